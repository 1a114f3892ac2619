//! The task's files in the data store: its inputs into `/home/inputs`, its outputs listed from
//! the outbox. Paths from the requesting site are checked again here: a site trusts no peer.

use std::{
    fs,
    io::{self, Write},
    os::unix::fs::PermissionsExt,
    path::Path,
};

use haven_api::task::TaskInput;
use sha2::{Digest, Sha256};

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A relative path of plain segments (no `.`, `..`, empty or hidden-by-slash tricks).
fn plain(path: &str) -> bool {
    !path.is_empty() && !path.contains('\0') && path.split('/').all(|s| !matches!(s, "" | "." | ".."))
}

/// Writes each input under `home/inputs/`, once (an input already there, always whole, is left).
pub fn write_inputs(home: &Path, inputs: &[TaskInput]) -> io::Result<()> {
    let root = home.join("inputs");
    for input in inputs {
        if !plain(&input.path) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("input path {:?} is not a plain relative path", input.path),
            ));
        }
        let path = root.join(&input.path);
        if path.symlink_metadata().is_ok() {
            continue;
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        // Written aside and renamed into place: a crash never leaves half an input to run.
        let partial =
            path.with_file_name(format!(".{}.partial-{}", input.path.replace('/', "_"), std::process::id()));
        let mut file = fs::OpenOptions::new().write(true).create(true).truncate(true).open(&partial)?;
        file.write_all(input.content.as_bytes())?;
        file.set_permissions(fs::Permissions::from_mode(0o644))?;
        file.sync_all()?;
        fs::rename(&partial, &path)?;
    }
    Ok(())
}

/// Every regular file under `outbox`, relative and sorted; links and the like are not outputs.
pub fn list(outbox: &Path) -> io::Result<Vec<String>> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(&entry.path(), &rel, out)?;
            } else if kind.is_file() {
                out.push(rel);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    match walk(outbox, "", &mut out) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        other => other?,
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_land_under_home_inputs_and_never_outside() {
        let home = tempfile::tempdir().expect("present");
        let script = TaskInput { path: "r/count.R".into(), content: "x <- 1".into() };
        write_inputs(home.path(), std::slice::from_ref(&script)).expect("present");
        assert_eq!(fs::read_to_string(home.path().join("inputs/r/count.R")).expect("present"), "x <- 1");
        for evil in ["../escape", "/etc/x", "a//b", "a/./b", ""] {
            let input = TaskInput { path: evil.into(), content: "x".into() };
            assert!(write_inputs(home.path(), &[input]).is_err(), "{evil}");
        }
        assert!(!home.path().join("escape").exists());
    }

    #[test]
    fn outputs_are_the_regular_files_of_the_outbox() {
        let outbox = tempfile::tempdir().expect("present");
        fs::create_dir_all(outbox.path().join("tables")).expect("present");
        fs::write(outbox.path().join("tables/counts.csv"), "a").expect("present");
        fs::write(outbox.path().join("summary.txt"), "b").expect("present");
        std::os::unix::fs::symlink("/etc/passwd", outbox.path().join("link")).expect("present");
        assert_eq!(list(outbox.path()).expect("present"), ["summary.txt", "tables/counts.csv"]);
        assert!(list(&outbox.path().join("missing")).expect("present").is_empty());
    }
}
