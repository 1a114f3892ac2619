//! The CRDs against a real API server: every example is accepted, every invalid manifest in
//! e2e/invalid/ is rejected with an error naming the field, and `kubectl get` prints the
//! designed columns.

use anyhow::{Context, Result};
use haven_e2e::{
    TestNamespace, admin, apply_as, apply_as_its_users, kubectl, kubectl_ok, kubectl_with_input, repo_path,
    unique_name, yaml_documents,
};
use serde_json::Value;

fn yaml_files(dir: &str) -> Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<_> =
        std::fs::read_dir(repo_path(dir))?.map(|entry| entry.map(|e| e.path())).collect::<Result<_, _>>()?;
    files.retain(|path| path.extension().is_some_and(|ext| ext == "yaml"));
    files.sort();
    Ok(files)
}

/// Applies a change that must be rejected: an AirlockRequest as its requester, so the error
/// is the schema's, not the admission policy's.
fn apply_rejected(document: &Value) -> Result<std::process::Output> {
    match document["spec"]["requestedBy"].as_str() {
        Some(requester) if document["kind"] == "AirlockRequest" => apply_as(requester, document),
        _ => kubectl_with_input(&["apply", "-f", "-"], &serde_json::to_string(document)?),
    }
}

fn delete(document: &Value) -> Result<()> {
    kubectl_with_input(
        &["delete", "--ignore-not-found", "--wait=false", "-f", "-"],
        &serde_json::to_string(document)?,
    )?;
    Ok(())
}

#[tokio::test]
async fn every_example_is_accepted_by_the_api_server() -> Result<()> {
    admin().await?;
    // AirlockRequests live in their workspace's namespace, which the operator would create.
    for namespace in ["ws-cancer-outcomes", "ws-minimal"] {
        kubectl_with_input(
            &["apply", "-f", "-"],
            &format!(
                "{{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{{\"name\":\"{namespace}\"}}}}"
            ),
        )?;
    }
    let mut documents = Vec::new();
    for path in yaml_files("examples")? {
        let text = std::fs::read_to_string(&path)?;
        for document in yaml_documents(&text)? {
            let output = apply_as_its_users(&document)?;
            assert!(
                output.status.success(),
                "{} was rejected: {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            documents.push(document);
        }
    }
    for document in &documents {
        delete(document)?;
    }
    Ok(())
}

/// One file of e2e/invalid/: what a user gets wrong and what the error must say.
struct InvalidCase {
    file: String,
    expect_field: String,
    expect_message: String,
    /// Valid objects created first (for changes to an existing object); the last document is
    /// the one that must be rejected.
    documents: Vec<Value>,
}

fn invalid_cases() -> Result<Vec<InvalidCase>> {
    yaml_files("e2e/invalid")?
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)?;
            let header = |key: &str| {
                text.lines()
                    .find_map(|line| line.strip_prefix(&format!("# {key}: ")))
                    .map(str::to_owned)
                    .with_context(|| format!("{} has no `# {key}:` line", path.display()))
            };
            Ok(InvalidCase {
                file: path.file_name().context("file name")?.to_string_lossy().into_owned(),
                expect_field: header("expect-field")?,
                expect_message: header("expect-message")?,
                documents: yaml_documents(&text)?,
            })
        })
        .collect()
}

#[tokio::test]
async fn invalid_manifests_are_rejected_with_an_error_naming_the_field() -> Result<()> {
    let client = admin().await?;
    let namespace = TestNamespace::create(&client, "e2e-invalid", &[]).await?;
    let cases = invalid_cases()?;
    assert!(cases.len() >= 25, "only {} invalid manifests", cases.len());

    let mut failures = Vec::new();
    for case in cases {
        let mut documents = case.documents.clone();
        // Cases that change an existing object create it first, under a name unique to this run.
        let name = documents.last().and_then(|d| d["metadata"]["name"].as_str()).context("name")?.to_owned();
        let name = if documents.len() > 1 { unique_name(&name) } else { name };
        for document in &mut documents {
            document["metadata"]["name"] = name.clone().into();
            if document["kind"] == "AirlockRequest" {
                document["metadata"]["namespace"] = namespace.name.clone().into();
            }
        }
        let (rejected, setup) = documents.split_last().context("a document")?;
        for document in setup {
            let output = apply_as_its_users(document)?;
            assert!(
                output.status.success(),
                "{}: setup failed: {}",
                case.file,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let output = apply_rejected(rejected)?;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if output.status.success() {
            failures.push(format!("{}: was accepted", case.file));
            delete(rejected)?;
        } else if !stderr.contains(&case.expect_field) || !stderr.contains(&case.expect_message) {
            failures.push(format!(
                "{}: error should name {:?} and say {:?}, but was: {}",
                case.file,
                case.expect_field,
                case.expect_message,
                stderr.trim()
            ));
        }
        for document in setup {
            delete(document)?;
        }
    }
    namespace.delete().await?;
    assert!(failures.is_empty(), "{} invalid manifests misbehaved:\n{}", failures.len(), failures.join("\n"));
    Ok(())
}

/// The header line of `kubectl get <resource>` for objects that exist.
fn header_of(args: &[&str]) -> Result<Vec<String>> {
    let output = kubectl_ok(args)?;
    let header = output.lines().next().context("kubectl printed nothing")?;
    // Columns are separated by two or more spaces; names like "PERMIT ID" contain one.
    Ok(header.split("  ").map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
}

fn example_named(file: &str, name: &str, namespace: Option<&str>) -> Result<Value> {
    let text = std::fs::read_to_string(repo_path(&format!("examples/{file}")))?;
    let mut document = yaml_documents(&text)?.into_iter().next().context("a document")?;
    document["metadata"]["name"] = name.into();
    if let Some(namespace) = namespace {
        document["metadata"]["namespace"] = namespace.into();
    }
    Ok(document)
}

#[tokio::test]
async fn kubectl_get_prints_the_designed_columns() -> Result<()> {
    let client = admin().await?;
    let namespace = TestNamespace::create(&client, "e2e-columns", &[]).await?;
    let permit = example_named("datapermit-minimal.yaml", &unique_name("columns"), None)?;
    let workspace = example_named("workspace-minimal.yaml", &unique_name("columns"), None)?;
    let request =
        example_named("airlockrequest-export-minimal.yaml", &unique_name("columns"), Some(&namespace.name))?;
    for document in [&permit, &workspace, &request] {
        let output = apply_as_its_users(document)?;
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let name = |d: &Value| d["metadata"]["name"].as_str().unwrap_or_default().to_owned();

    assert_eq!(
        header_of(&["get", "datapermits", &name(&permit)])?,
        ["NAME", "PERMIT ID", "TIER", "PHASE", "VALID UNTIL", "WORKSPACES", "AGE"]
    );
    assert_eq!(
        header_of(&["get", "workspaces", &name(&workspace)])?,
        ["NAME", "PERMIT", "PHASE", "NAMESPACE", "USERS", "EXPIRES", "AGE"]
    );
    assert_eq!(
        header_of(&["get", "airlockrequests", "-n", &namespace.name, &name(&request)])?,
        ["NAME", "DIRECTION", "FILES", "PHASE", "CHECKS", "APPROVALS", "AGE"]
    );
    // Short names resolve too.
    for short in ["dp", "permit", "ws"] {
        let output = kubectl(&["get", short])?;
        assert!(output.status.success(), "kubectl get {short}: {}", String::from_utf8_lossy(&output.stderr));
    }
    assert!(kubectl(&["get", "ar", "-n", &namespace.name])?.status.success(), "kubectl get ar");

    for document in [&permit, &workspace] {
        delete(document)?;
    }
    namespace.delete().await?;
    Ok(())
}
