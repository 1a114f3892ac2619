//! `file-policy`: the name's extension, the size, and what the bytes really are. Content is
//! identified by magic bytes, never by the name, so an executable or an archive renamed
//! `.csv` is caught: an archive would carry files no check has seen, an executable has no
//! business leaving a research environment.

use super::check::{Check, FILE_POLICY};
use super::policy::FilePolicy;
use super::text::{human_bytes, sanitise};

/// How much of a file's start is read to identify it (PE headers sit within the first KiB).
pub(super) const HEAD_LEN: usize = 4096;

/// Executable and archive formats, identified by their magic bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ContentKind {
    Elf,
    Pe,
    MachO,
    /// `#!` and the interpreter named on the first line.
    Script(String),
    Zip,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
    SevenZip,
    Rar,
    Tar,
}

impl ContentKind {
    pub(super) fn description(&self) -> String {
        match self {
            ContentKind::Elf => "an ELF executable".into(),
            ContentKind::Pe => "a Windows (PE/MZ) executable".into(),
            ContentKind::MachO => "a Mach-O executable (or Java class)".into(),
            ContentKind::Script(interpreter) => format!("an executable script (#!{interpreter})"),
            ContentKind::Zip => "a zip archive".into(),
            ContentKind::Gzip => "a gzip archive".into(),
            ContentKind::Bzip2 => "a bzip2 archive".into(),
            ContentKind::Xz => "an xz archive".into(),
            ContentKind::Zstd => "a zstd archive".into(),
            ContentKind::SevenZip => "a 7z archive".into(),
            ContentKind::Rar => "a rar archive".into(),
            ContentKind::Tar => "a tar archive".into(),
        }
    }

    /// Names this content may carry. It passes only under one of them, and only when the
    /// permit allows that extension: explicitly allowing `zip` is what lets a zip leave.
    fn extensions(&self) -> &'static [&'static str] {
        match self {
            ContentKind::Elf => &["so", "o", "elf"],
            ContentKind::Pe => &["exe", "dll"],
            ContentKind::MachO => &["dylib", "class"],
            ContentKind::Script(_) => {
                &["sh", "bash", "zsh", "ksh", "py", "r", "pl", "rb", "js", "jl", "lua", "php", "tcl", "awk"]
            }
            // Office and OpenDocument files are zip containers.
            ContentKind::Zip => &["zip", "docx", "xlsx", "pptx", "odt", "ods", "odp"],
            ContentKind::Gzip => &["gz", "tgz"],
            ContentKind::Bzip2 => &["bz2", "tbz2"],
            ContentKind::Xz => &["xz", "txz"],
            ContentKind::Zstd => &["zst", "zstd"],
            ContentKind::SevenZip => &["7z"],
            ContentKind::Rar => &["rar"],
            ContentKind::Tar => &["tar"],
        }
    }
}

/// What `head` (a file's first [`HEAD_LEN`] bytes) is, if it is an executable or an archive.
pub(super) fn sniff(head: &[u8]) -> Option<ContentKind> {
    const PREFIXES: [(&[u8], ContentKind); 13] = [
        (b"\x7fELF", ContentKind::Elf),
        (b"\xfe\xed\xfa\xce", ContentKind::MachO),
        (b"\xfe\xed\xfa\xcf", ContentKind::MachO),
        (b"\xce\xfa\xed\xfe", ContentKind::MachO),
        (b"\xcf\xfa\xed\xfe", ContentKind::MachO),
        (b"\xca\xfe\xba\xbe", ContentKind::MachO),
        (b"PK\x03\x04", ContentKind::Zip),
        (b"PK\x05\x06", ContentKind::Zip),
        (b"PK\x07\x08", ContentKind::Zip),
        (b"\x1f\x8b", ContentKind::Gzip),
        (b"\xfd7zXZ\x00", ContentKind::Xz),
        (b"\x28\xb5\x2f\xfd", ContentKind::Zstd),
        (b"7z\xbc\xaf\x27\x1c", ContentKind::SevenZip),
    ];
    if let Some((_, kind)) = PREFIXES.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Some(kind.clone());
    }
    if head.starts_with(b"Rar!\x1a\x07") {
        return Some(ContentKind::Rar);
    }
    if is_bzip2(head) {
        return Some(ContentKind::Bzip2);
    }
    if is_pe(head) {
        return Some(ContentKind::Pe);
    }
    if let Some(rest) = head.strip_prefix(b"#!") {
        let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
        return Some(ContentKind::Script(sanitise(&String::from_utf8_lossy(line), 40).trim().to_owned()));
    }
    if head.get(257..262) == Some(b"ustar".as_slice()) {
        return Some(ContentKind::Tar);
    }
    None
}

/// `BZh`, a block size digit, then the block or end-of-stream magic: three letters alone
/// could start a CSV header.
fn is_bzip2(head: &[u8]) -> bool {
    head.starts_with(b"BZh")
        && head.get(3).is_some_and(|b| (b'1'..=b'9').contains(b))
        && matches!(head.get(4..10), Some(b"\x31\x41\x59\x26\x53\x59" | b"\x17\x72\x45\x38\x50\x90"))
}

/// `MZ` and either the `PE\0\0` header it points to or binary bytes in the DOS header: a text
/// file may well start with "MZ", but never holds a NUL.
fn is_pe(head: &[u8]) -> bool {
    if !head.starts_with(b"MZ") || head.len() < 64 {
        return false;
    }
    let pe_offset = head.get(0x3c..0x40).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let has_pe_header =
        pe_offset.and_then(|at| head.get(at..at.saturating_add(4))).is_some_and(|sig| sig == b"PE\0\0");
    has_pe_header || head[..64].contains(&0)
}

/// The extension of a requested name, lower case without the dot.
pub(super) fn extension(name: &str) -> Option<String> {
    std::path::Path::new(name).extension().map(|ext| ext.to_string_lossy().to_ascii_lowercase())
}

/// The `file-policy` check (hard).
pub(super) fn file_policy(name: &str, size: u64, head: &[u8], policy: &FilePolicy) -> Check {
    let extension = extension(name);
    let mut problems = Vec::new();
    match &extension {
        None => problems.push(format!("the name has no extension (allowed: {})", allowed_list(policy))),
        Some(ext) if !policy.allows(ext) => {
            problems.push(format!("the extension .{ext} is not allowed (allowed: {})", allowed_list(policy)))
        }
        Some(_) => {}
    }
    if size > policy.max_file_size {
        problems.push(format!(
            "{} is larger than the {} limit",
            human_bytes(size),
            human_bytes(policy.max_file_size)
        ));
    }
    let content = sniff(head);
    if let Some(kind) = &content {
        let named_as_kind = extension.as_deref().filter(|ext| kind.extensions().contains(ext));
        match (named_as_kind, &extension) {
            (Some(ext), _) if policy.allows(ext) => {}
            (Some(ext), _) => {
                problems.push(format!("content is {} and .{ext} is not allowed", kind.description()))
            }
            (None, Some(ext)) => {
                problems.push(format!("content is {}, but the name says .{ext}", kind.description()))
            }
            (None, None) => problems.push(format!("content is {}", kind.description())),
        }
    }
    if problems.is_empty() {
        let what = content.map_or_else(|| "no executable or archive content".to_owned(), |k| k.description());
        let ext = extension.unwrap_or_default();
        Check::pass(
            FILE_POLICY,
            format!(
                ".{ext} is allowed; {} (limit {}); {what}",
                human_bytes(size),
                human_bytes(policy.max_file_size)
            ),
        )
    } else {
        Check::fail(
            FILE_POLICY,
            format!("{}; the file cannot leave, and was not checked further", problems.join("; ")),
        )
    }
}

fn allowed_list(policy: &FilePolicy) -> String {
    if policy.allowed_extensions.is_empty() {
        return "none".into();
    }
    policy.allowed_extensions.join(", ")
}

#[cfg(test)]
#[path = "sniff_tests.rs"]
mod tests;
