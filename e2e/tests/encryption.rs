//! Archives at rest: a workspace archive is sealed with a key derived from the permit's key, so
//! nothing in it, neither file contents nor file names, can be read without that key, and once
//! destruction shreds the key, a copy of the archive that escaped deletion (a backup, a volume
//! snapshot) can never be opened again. The airlock's quarantine copies are sealed likewise,
//! with another key derived from the same one, and still deliver the exact submitted bytes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use haven_api::{
    DataPermit, Workspace, airlock::AirlockPhase, permit::PermitPhase, workspace::WorkspacePhase,
};
use haven_data::{ArchiveError, DataStore, SealError, SealKey, open_archive};
use haven_e2e::{
    DEADLINE, Operator, admin,
    airlock::{self, CHECKER},
    data_root, ensure_namespace, eventually, fixtures, keys, unique_name,
};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

/// What the researcher leaves in the outbox: a name and contents that must not show.
const RESULT_NAME: &str = "mortality-by-postcode.csv";
const RESULT: &str = "postcode,deaths\nNE66 1XX,3\n";

/// A permit with one Ready workspace whose outbox holds the result.
struct Project {
    client: Client,
    root: PathBuf,
    permit: String,
    workspace: String,
    permits: Api<DataPermit>,
    workspaces: Api<Workspace>,
    _operator: Operator,
}

impl Project {
    async fn start(prefix: &str) -> Result<Self> {
        let client = admin().await?;
        ensure_namespace(&client, "haven-system").await?;
        let root = data_root(prefix)?;
        fixtures::write_raw_source(&root)?;
        let operator = Operator::start(&root).await?;
        let (permit, workspace) = (unique_name(&format!("{prefix}-p")), unique_name(&format!("{prefix}-ws")));
        let user = format!("{workspace}@example.org");
        let permits: Api<DataPermit> = Api::all(client.clone());
        let workspaces: Api<Workspace> = Api::all(client.clone());
        permits.create(&PostParams::default(), &fixtures::permit(&permit, &user, -5, 600)?).await?;
        let spec = fixtures::workspace(&workspace, &permit, &user, json!({}))?;
        workspaces.create(&PostParams::default(), &spec).await?;
        haven_e2e::workspace::ready(&workspaces, &workspace).await?;
        let outbox = root.join("workspaces").join(&workspace).join("home/outputs");
        std::fs::write(outbox.join(RESULT_NAME), RESULT)?;
        Ok(Self { client, root, permit, workspace, permits, workspaces, _operator: operator })
    }

    fn store(&self) -> DataStore {
        DataStore::new(&self.root)
    }

    fn archive_dir(&self) -> PathBuf {
        self.root.join("archive").join(&self.permit).join(&self.workspace)
    }

    async fn permit_phase(&self) -> Result<PermitPhase> {
        Ok(self.permits.get(&self.permit).await?.status.map(|s| s.phase).unwrap_or_default())
    }

    /// Deletes the permit (destroying whatever is left) and waits until it is gone.
    async fn delete(self) -> Result<()> {
        self.permits.delete(&self.permit, &DeleteParams::default()).await?;
        eventually(DEADLINE, "permit gone", || async {
            Ok(self.permits.get_opt(&self.permit).await?.is_none().then_some(()))
        })
        .await
    }
}

/// Every file under `dir` (relative path and bytes).
fn files_under(dir: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut found = vec![];
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        for entry in std::fs::read_dir(dir.join(&rel))? {
            let entry = entry?;
            let rel = rel.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                pending.push(rel);
            } else {
                found.push((rel.clone(), std::fs::read(dir.join(&rel))?));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Copies the tree at `from` to `to`, as a backup would.
fn copy_tree(from: &Path, to: &Path) -> Result<usize> {
    let files = files_under(from)?;
    for (rel, bytes) in &files {
        let path = to.join(rel);
        std::fs::create_dir_all(path.parent().context("parent")?)?;
        std::fs::write(path, bytes)?;
    }
    Ok(files.len())
}

/// Runs `haven archive open` with the permit key in `key_file`.
fn haven_archive_open(project: &Project, key_file: &Path, out: &Path) -> Result<std::process::Output> {
    Ok(std::process::Command::new(std::env::var("HAVEN_BIN").context("HAVEN_BIN is not set")?)
        .args(["archive", "open", "--data-root"])
        .arg(&project.root)
        .args(["--permit", &project.permit, "--workspace", &project.workspace, "--key-file"])
        .arg(key_file)
        .arg("--out")
        .arg(out)
        .output()?)
}

fn random_key() -> Result<Vec<u8>> {
    // Unpredictable enough for a key that must merely differ: the clock and the process.
    let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
    let digest = <sha2::Sha256 as sha2::Digest>::digest(seed.as_bytes());
    Ok(digest.to_vec())
}

#[tokio::test]
async fn an_archive_cannot_be_read_without_the_permits_key() -> Result<()> {
    let project = Project::start("sealed").await?;
    // Deleting the workspace archives it; the permit stays Active, so the archive stays.
    project.workspaces.delete(&project.workspace, &DeleteParams::default()).await?;
    eventually(DEADLINE, "workspace archived and gone", || async {
        let gone = project.workspaces.get_opt(&project.workspace).await?.is_none();
        Ok((gone && project.archive_dir().join("MANIFEST.sealed").exists()).then_some(()))
    })
    .await?;

    // On disk: neither the result's contents nor its name, nor any folder name of the home.
    let stored = files_under(&project.archive_dir())?;
    assert!(stored.len() >= 2, "a manifest and a blob: {stored:?}");
    for (rel, bytes) in &stored {
        let name = rel.to_string_lossy();
        assert!(name == "MANIFEST.sealed" || name.starts_with("blobs/"), "unexpected {name}");
        for secret in ["NE66 1XX", "postcode", "mortality", "outputs", "home/"] {
            assert!(!name.contains(secret), "{name} shows {secret:?}");
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{name} shows {secret:?}");
        }
    }

    // With the permit's key it opens, in the library and with `haven archive open`.
    let permit_key = keys::permit_key(&project.client, &project.permit).await?.context("the permit's key")?;
    let key = SealKey::archive(&permit_key)?;
    let opened = project.root.with_extension("opened");
    let record = open_archive(&project.store(), &project.permit, &project.workspace, &key, &opened)?;
    assert_eq!(record.files, 1, "{record:?}");
    let restored = opened.join("files/home/outputs").join(RESULT_NAME);
    assert_eq!(std::fs::read_to_string(&restored)?, RESULT);
    let key_file = project.root.with_extension("key");
    std::fs::write(&key_file, &permit_key)?;
    let cli_out = project.root.with_extension("cli-opened");
    let output = haven_archive_open(&project, &key_file, &cli_out)?;
    assert!(output.status.success(), "haven archive open: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(std::fs::read_to_string(cli_out.join("files/home/outputs").join(RESULT_NAME))?, RESULT);

    // Without it, nothing: another key opens nothing and restores nothing.
    let other = SealKey::archive(&random_key()?)?;
    let refused = project.root.with_extension("refused");
    match open_archive(&project.store(), &project.permit, &project.workspace, &other, &refused) {
        Err(ArchiveError::Sealed { source: SealError::WrongKey { .. }, .. }) => {}
        other => panic!("expected a wrong key, got {other:?}"),
    }
    assert!(!refused.exists(), "nothing restored");
    std::fs::write(&key_file, random_key()?)?;
    let output = haven_archive_open(&project, &key_file, &refused)?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("sealed with key"), "haven archive open: {stderr}");
    assert!(!refused.exists(), "nothing restored");

    project.delete().await
}

#[tokio::test]
async fn a_copy_of_an_archive_made_before_destroy_cannot_be_decrypted_after() -> Result<()> {
    let project = Project::start("escaped").await?;
    // Revocation archives the workspace; retention (3 s) later the permit's data is destroyed.
    let revoke = json!({"spec": {"revoked": true, "revocationReason": "e2e: archive encryption"}});
    project.permits.patch(&project.permit, &PatchParams::default(), &Patch::Merge(&revoke)).await?;
    eventually(DEADLINE, "workspace Archived", || async {
        let phase = project.workspaces.get(&project.workspace).await?.status.map(|s| s.phase);
        Ok((phase == Some(WorkspacePhase::Archived)).then_some(()))
    })
    .await?;

    // Before destruction: someone copies the archive out of the store (a backup), and the
    // test keeps the permit's key (as a backup of the Secret would).
    let backup = data_root("backup")?;
    let copy = backup.join("archive").join(&project.permit).join(&project.workspace);
    let copied = copy_tree(&project.archive_dir(), &copy)?;
    assert!(copied >= 2 && copy.join("MANIFEST.sealed").exists(), "copied before destruction");
    let key_before = keys::permit_key(&project.client, &project.permit).await?.context("key before")?;

    eventually(DEADLINE, "permit Destroyed", || async {
        Ok((project.permit_phase().await? == PermitPhase::Destroyed).then_some(()))
    })
    .await?;
    let record = project
        .permits
        .get(&project.permit)
        .await?
        .status
        .and_then(|s| s.destruction)
        .context("destruction record")?;
    assert!(record.key_shredded && record.archives_sealed, "{record:?}");
    assert_eq!(record.key_fingerprint, haven_data::prepare::key_fingerprint(&key_before), "{record:?}");
    assert!(keys::permit_key(&project.client, &project.permit).await?.is_none(), "the key Secret is gone");
    assert!(!project.archive_dir().exists(), "the archive itself is destroyed");

    // The copy escaped deletion, but no key the cluster still holds opens it, nor a new one.
    let backup_store = DataStore::new(&backup);
    let refused = backup.join("refused");
    let secrets: Api<Secret> = Api::namespaced(project.client.clone(), "haven-system");
    let mut tried = vec![random_key()?];
    for secret in secrets.list(&Default::default()).await?.items {
        tried.extend(secret.data.and_then(|mut data| data.remove("key")).map(|key| key.0));
    }
    for candidate in tried.iter().filter(|k| k.len() >= 32) {
        let key = SealKey::archive(candidate)?;
        match open_archive(&backup_store, &project.permit, &project.workspace, &key, &refused) {
            Err(ArchiveError::Sealed { source: SealError::WrongKey { .. }, .. }) => {}
            other => panic!("the copy opened or failed otherwise with {key:?}: {other:?}"),
        }
        assert!(!refused.exists(), "nothing restored");
    }

    // It is the key, and only the key: the same copy opens with the key read before destruction.
    let opened = backup.join("opened");
    let key = SealKey::archive(&key_before)?;
    open_archive(&backup_store, &project.permit, &project.workspace, &key, &opened)?;
    assert_eq!(std::fs::read_to_string(opened.join("files/home/outputs").join(RESULT_NAME))?, RESULT);

    // A workspace created later under the destroyed permit is torn down with nothing to archive,
    // and the shredded key does not come back for it.
    let late = unique_name("escaped-late");
    let user = format!("{}@example.org", project.workspace);
    project
        .workspaces
        .create(&PostParams::default(), &fixtures::workspace(&late, &project.permit, &user, json!({}))?)
        .await?;
    let archived = eventually(DEADLINE, "the late workspace Archived", || async {
        let status = project.workspaces.get(&late).await?.status.unwrap_or_default();
        Ok((status.phase == WorkspacePhase::Archived).then_some(status))
    })
    .await?;
    let condition = archived.conditions.iter().find(|c| c.type_ == "Archived").context("Archived")?;
    assert_eq!(condition.reason, "NothingToArchive", "{condition:?}");
    assert!(keys::permit_key(&project.client, &project.permit).await?.is_none(), "the key stays shredded");
    assert!(!project.archive_dir().exists(), "nothing archived under the destroyed permit");

    project.delete().await
}

#[tokio::test]
async fn a_quarantine_copy_cannot_be_read_without_the_permits_key() -> Result<()> {
    let project = airlock::Project::start("qsealed", json!({})).await?;
    let table = b"postcode,deaths\nNE66 1XX,31\nNE65 0ZZ,40\n";
    project.output("tables/mortality-by-postcode.csv", table)?;
    let file = "tables/mortality-by-postcode.csv";
    project.submit("sealed", &[file]).await?;
    let waiting = project.phase_reaches("sealed", AirlockPhase::AwaitingReview).await?;
    // The checks saw the plaintext (they passed the table's cells), in a scratch copy now gone.
    let checks = waiting.status.as_ref().and_then(|s| s.files.first()).map(|f| f.checks.len());
    assert!(checks.is_some_and(|n| n > 1), "{:?}", waiting.status);
    let namespace_quarantine = project.root.join("quarantine").join(&project.namespace);
    assert!(
        airlock::Project::hidden_entries(&namespace_quarantine).is_empty(),
        "no scratch copy left after the checks"
    );

    // On disk the copy shows nothing; the manifest (hashes of the plaintext) stays readable.
    let quarantine = project.quarantine("sealed");
    let sealed = std::fs::read(quarantine.join("files").join(file))?;
    assert!(sealed.starts_with(b"HAVNSEAL"), "sealed");
    for secret in ["NE66 1XX", "postcode", "deaths"] {
        assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_bytes()), "shows {secret:?}");
    }
    let manifest = std::fs::read_to_string(quarantine.join("MANIFEST.json"))?;
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(table));
    assert!(manifest.contains(&sha256), "{manifest}");

    // The permit's quarantine key opens it; the archive key and any other key do not.
    let key = keys::quarantine_key(&project.client, &project.permit).await?;
    let mut opened = Vec::new();
    haven_data::sealed::open(&sealed[..], &mut opened, &key)?;
    assert_eq!(opened, table);
    let archive_key = keys::archive_key(&project.client, &project.permit).await?;
    for wrong in [archive_key, SealKey::quarantine(&random_key()?)?] {
        let refused = haven_data::sealed::open(&sealed[..], std::io::sink(), &wrong);
        assert!(matches!(refused, Err(SealError::WrongKey { .. })), "{wrong:?}: {refused:?}");
    }

    // Approved, the export delivers the submitted bytes, with the reviewed manifest.
    let approve = json!([{"reviewer": CHECKER, "decision": "Approve"}]);
    project.review(CHECKER, "sealed", approve).await.map_err(anyhow::Error::msg)?;
    let exported = project.phase_reaches("sealed", AirlockPhase::Exported).await?;
    let status = exported.status.context("status")?;
    let (delivery, snapshot) = (status.delivery.context("delivery")?, status.snapshot.context("snapshot")?);
    assert_eq!(delivery.manifest_sha256, snapshot.manifest_sha256);
    let egress = project.egress("sealed");
    assert_eq!(std::fs::read(egress.join("files").join(file))?, table, "byte for byte");
    let delivered_manifest = std::fs::read(egress.join("MANIFEST.json"))?;
    assert_eq!(
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&delivered_manifest)),
        delivery.manifest_sha256
    );
    Ok(())
}
