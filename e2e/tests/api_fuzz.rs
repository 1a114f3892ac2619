//! The API fuzzed: every example DataPermit, Workspace and AirlockRequest, mutated a few hundred times with a
//! seed (a value's type, sign, size, emptiness or encoding changed, a list entry dropped or
//! duplicated, a key dropped, an unknown key added). Each mutant is either refused at
//! admission with a message naming the mutated field, or admitted and explained by a status
//! condition within the deadline, with nothing provisioned for a workspace that is not Ready
//! unless its condition says why. Airlock requests are created as their requester (the
//! admission policy checks who asks), in a namespace that is no workspace's. `HAVEN_FUZZ_SEED` replays a run; `HAVEN_FUZZ_MUTANTS` sets
//! how many mutants each example gets.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use haven_api::{AirlockRequest, DataPermit, Workspace};
use haven_e2e::{
    DEADLINE, Operator, admin, data_root, ensure_namespace, eventually, kubectl_with_input, unique_name,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams},
};
use serde_json::{Value, json};

/// xorshift64*: small, seeded, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A step into a value: an object's key or a list's index.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

/// The path as the API server prints it: `spec.datasets[0].columns`.
fn printed(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) if out.is_empty() => out.push_str(key),
            Step::Key(key) => out.push_str(&format!(".{key}")),
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn paths(value: &Value, prefix: Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let mut path = prefix.clone();
                path.push(Step::Key(key.clone()));
                paths(child, path, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let mut path = prefix.clone();
                path.push(Step::Index(i));
                paths(child, path, out);
            }
        }
        _ => {}
    }
}

fn at<'a>(value: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path.iter().fold(value, |v, step| match step {
        Step::Key(key) => &mut v[key.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}

/// One random change under `spec`; returns the mutated object, the changed path and what was done.
fn mutate(example: &Value, rng: &mut Rng) -> (Value, Vec<Step>, &'static str) {
    let mut all = Vec::new();
    paths(&example["spec"], vec![Step::Key("spec".into())], &mut all);
    let path = all[rng.below(all.len())].clone();
    let mut object = example.clone();
    let target = at(&mut object, &path);
    let kind = match (rng.below(8), &*target) {
        (0, Value::String(_)) => {
            *target = json!(42);
            "a number for a string"
        }
        (0, _) => {
            *target = json!("fuzz");
            "a string for another type"
        }
        (1, Value::Number(n)) => {
            *target = json!(-n.as_f64().unwrap_or(1.0).abs() - 1.0);
            "a negative number"
        }
        (1, Value::String(s)) => {
            *target = json!(format!("-{s}"));
            "a negative sign"
        }
        (2, Value::String(s)) => {
            *target = json!(s.repeat(2_000 / s.len().max(1) + 1));
            "a very long string"
        }
        (2, _) => {
            *target = json!(1_000_000_000_000_i64);
            "a huge number"
        }
        (3, Value::Array(_)) => {
            *target = json!([]);
            "an empty list"
        }
        (3, Value::Object(_)) => {
            *target = json!({});
            "an empty object"
        }
        (3, _) => {
            *target = json!("");
            "an empty string"
        }
        (4, Value::String(s)) => {
            *target = json!(format!("{s}\u{7}\u{fc}\u{202e}"));
            "control and unicode characters"
        }
        (5, Value::Array(items)) if !items.is_empty() => {
            let first = items[0].clone();
            if let Value::Array(items) = target {
                items.push(first);
            }
            "a duplicated list entry"
        }
        (6, Value::Object(_)) => {
            target["fuzzUnknownField"] = json!(1);
            "an unknown field"
        }
        _ if path.len() > 1 => {
            let (last, parent) = path.split_last().expect("a parent");
            match (at(&mut object, parent), last) {
                (Value::Object(map), Step::Key(key)) => {
                    map.remove(key);
                }
                (Value::Array(items), Step::Index(i)) => {
                    items.remove(*i);
                }
                _ => {}
            }
            "dropped"
        }
        _ => {
            target["fuzzUnknownField"] = json!(1);
            "an unknown field"
        }
    };
    (object, path, kind)
}

/// Whether the API server's refusal names the mutated field: its path, an ancestor's below
/// `spec`, or (for a dropped or unknown key) the key.
fn names_the_field(message: &str, path: &[Step]) -> bool {
    // `spec` itself counts only when it is what was changed; below it, the field or its parent.
    (path.len().min(2)..=path.len()).rev().any(|n| message.contains(&printed(&path[..n])))
        || message.contains("fuzzUnknownField")
        || path
            .iter()
            .rev()
            .find_map(|s| if let Step::Key(k) = s { Some(k) } else { None })
            .is_some_and(|k| k != "spec" && message.contains(k.as_str()))
}

/// `kubectl create` (`--dry-run=server` when `dry_run`), as `requester` when given (RBAC out
/// of the way, `request.userInfo.username` theirs): an airlock request's, as in its example.
fn create(object: &Value, dry_run: bool, requester: Option<&str>) -> Result<std::process::Output> {
    let mut args = vec!["create", "-o", "name", "-f", "-"];
    if dry_run {
        args.push("--dry-run=server");
    }
    let as_requester = requester.map(|user| format!("--as={user}"));
    if let Some(user) = &as_requester {
        args.extend([user.as_str(), "--as-group=system:masters"]);
    }
    kubectl_with_input(&args, &object.to_string())
}

/// A dry run: Ok(()) if admitted, Err(message) if refused.
fn admitted(object: &Value, requester: Option<&str>) -> Result<Result<(), String>> {
    let output = create(object, true, requester)?;
    Ok(if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    })
}

fn conditions_of(status: Option<&Value>) -> Vec<(String, String)> {
    status
        .and_then(|s| s["conditions"].as_array())
        .map(|all| {
            all.iter()
                .map(|c| {
                    (
                        c["type"].as_str().unwrap_or_default().to_owned(),
                        c["reason"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn mutated_examples_are_refused_naming_the_field_or_explained_by_a_condition() -> Result<()> {
    let client = admin().await?;
    ensure_namespace(&client, "haven-system").await?;
    let seed = std::env::var("HAVEN_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
            | 1
    });
    let per_example: usize =
        std::env::var("HAVEN_FUZZ_MUTANTS").ok().and_then(|s| s.parse().ok()).unwrap_or(100);
    eprintln!(
        "[e2e] fuzz seed {seed} (replay with HAVEN_FUZZ_SEED={seed}), {per_example} mutants per example"
    );
    let mut rng = Rng(seed);
    let batch = unique_name("fuzz");

    let mut refused = 0;
    let mut failures = Vec::new();
    let mut admitted_objects: Vec<(String, String, String)> = Vec::new(); // kind, name, what
    // Airlock requests go to a namespace of their own that no workspace owns.
    let airlock_namespace = format!("ws-{batch}");
    ensure_namespace(&client, &airlock_namespace).await?;
    for file in [
        "datapermit.yaml",
        "datapermit-minimal.yaml",
        "workspace.yaml",
        "workspace-minimal.yaml",
        "airlockrequest-export.yaml",
        "airlockrequest-export-minimal.yaml",
    ] {
        let text = std::fs::read_to_string(haven_e2e::repo_path(&format!("examples/{file}")))?;
        let example = haven_e2e::yaml_documents(&text)?.into_iter().next().context("an example")?;
        let requester = example["spec"]["requestedBy"].as_str();
        for n in 0..per_example {
            let (mut mutant, path, kind) = mutate(&example, &mut rng);
            let name = format!(
                "{batch}-{}",
                file.trim_end_matches(".yaml")
                    .replace("datapermit", "p")
                    .replace("workspace", "w")
                    .replace("airlockrequest-export", "a")
                    + &format!("-{n}")
            );
            mutant["metadata"] = json!({"name": name, "labels": {"haven-e2e/fuzz": batch}});
            if mutant["kind"] == "AirlockRequest" {
                mutant["metadata"]["namespace"] = json!(airlock_namespace);
            }
            let what = format!("{file} {} {kind}", printed(&path));
            match admitted(&mutant, requester)? {
                Err(message) if names_the_field(&message, &path) => refused += 1,
                Err(message) => failures.push(format!("{what}: refused without naming the field: {message}")),
                Ok(()) => {
                    let output = create(&mutant, false, requester)?;
                    if !output.status.success() {
                        bail!(
                            "{what}: admitted by a dry run, refused when created: {}",
                            String::from_utf8_lossy(&output.stderr)
                        );
                    }
                    let kind = mutant["kind"].as_str().unwrap_or_default().to_owned();
                    admitted_objects.push((kind, name, what));
                }
            }
        }
    }

    // Every admitted mutant is explained by the operator within the deadline.
    let root = data_root("fuzz")?;
    let operator = Operator::start(&root).await?;
    let permits: Api<DataPermit> = Api::all(client.clone());
    let workspaces: Api<Workspace> = Api::all(client.clone());
    let requests: Api<AirlockRequest> = Api::namespaced(client.clone(), &airlock_namespace);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let selector = ListParams::default().labels(&format!("haven-e2e/fuzz={batch}"));
    let explained = eventually(DEADLINE * 2, "every admitted mutant has a condition", || async {
        let mut status: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for permit in permits.list(&selector).await?.items {
            let value = serde_json::to_value(&permit.status)?;
            status.insert(permit.name_any(), conditions_of(Some(&value)));
        }
        for request in requests.list(&selector).await?.items {
            let value = serde_json::to_value(&request.status)?;
            status.insert(request.name_any(), conditions_of(Some(&value)));
        }
        for workspace in workspaces.list(&selector).await?.items {
            let value = serde_json::to_value(&workspace.status)?;
            let conditions = conditions_of(Some(&value));
            // A workspace is explained by its Ready condition.
            let ready = conditions.iter().any(|(t, _)| t == "Ready");
            status.insert(workspace.name_any(), if ready { conditions } else { Vec::new() });
        }
        Ok(admitted_objects
            .iter()
            .all(|(_, name, _)| status.get(name).is_some_and(|c| !c.is_empty()))
            .then_some(status))
    })
    .await;
    let explained = match explained {
        Ok(all) => all,
        Err(error) => {
            let mut silent = Vec::new();
            for (kind, name, what) in &admitted_objects {
                let status = match kind.as_str() {
                    "Workspace" => serde_json::to_value(workspaces.get(name).await?.status)?,
                    "AirlockRequest" => serde_json::to_value(requests.get(name).await?.status)?,
                    _ => serde_json::to_value(permits.get(name).await?.status)?,
                };
                let ready =
                    conditions_of(Some(&status)).iter().any(|(t, _)| kind != "Workspace" || t == "Ready");
                if !ready {
                    silent.push(format!("{what} ({name}): status {status}"));
                }
            }
            bail!("{error}; not explained:\n{}", silent.join("\n"))
        }
    };
    for (kind, name, what) in &admitted_objects {
        if kind != "Workspace" {
            continue;
        }
        let ready = &explained[name];
        let provisioned = ready.iter().any(|(t, r)| {
            t == "Ready" && ["Provisioned", "Progressing", "ApplyFailed"].contains(&r.as_str())
        });
        if !provisioned && namespaces.get_opt(&format!("ws-{name}")).await?.is_some() {
            failures.push(format!("{what}: refused ({ready:?}) but its namespace exists"));
        }
    }

    // Clean up while the operator runs (it removes its finalizers).
    for request in requests.list(&selector).await?.items {
        requests.delete(&request.name_any(), &DeleteParams::default()).await?;
    }
    for workspace in workspaces.list(&selector).await?.items {
        workspaces.delete(&workspace.name_any(), &DeleteParams::default()).await?;
    }
    for permit in permits.list(&selector).await?.items {
        permits.delete(&permit.name_any(), &DeleteParams::default()).await?;
    }
    // A permit keeps its data until its retention ends; this test's data store is thrown away,
    // so its permits' finalizers are lifted once the workspaces are gone.
    eventually(DEADLINE * 2, "the fuzz workspaces are gone", || async {
        Ok(workspaces.list(&selector).await?.items.is_empty().then_some(()))
    })
    .await?;
    let lift = kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}}));
    for permit in permits.list(&selector).await?.items {
        permits.patch(&permit.name_any(), &kube::api::PatchParams::default(), &lift).await?;
    }
    let cleaned = eventually(DEADLINE * 2, "the fuzz objects are gone", || async {
        let left = permits.list(&selector).await?.items.len()
            + workspaces.list(&selector).await?.items.len()
            + requests.list(&selector).await?.items.len();
        Ok((left == 0).then_some(()))
    })
    .await;
    drop(operator);

    eprintln!(
        "[e2e] fuzz seed {seed}: {refused} refused at admission naming the field, {} admitted and explained, {} failures",
        admitted_objects.len() - failures.iter().filter(|f| f.contains("namespace exists")).count(),
        failures.len()
    );
    if !failures.is_empty() {
        bail!("fuzz seed {seed}: {} failures:\n{}", failures.len(), failures.join("\n"));
    }
    cleaned
}
