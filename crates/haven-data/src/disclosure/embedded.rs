//! Content hidden behind an allowed file: a zip appended to a PNG, an archive after a CSV's
//! last row, a file embedded in a PDF. The type sniffing reads a file's first bytes only, so
//! this reads all of it, in blocks (bounded memory), by what the format allows:
//! - text (csv, txt, md, json, svg): no control bytes but tab, line breaks and form feed,
//!   which every archive, executable and compressed stream has;
//! - PNG: chunks up to `IEND` and nothing after it;
//! - PDF: nothing but whitespace after the last `%%EOF`, and no embedded file
//!   (`/EmbeddedFile`) or launch action (`/Launch`).
//!
//! Only evidence fails a file: one cut short (no `IEND`, no `%%EOF`) hides nothing after its
//! end and goes to the reviewers' content review like any image or document.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use memchr::memmem;

const BLOCK: usize = 64 * 1024;

/// Why the file may hide other content, if it may.
pub fn hidden_content(path: &Path, extension: Option<&str>) -> io::Result<Option<String>> {
    match extension {
        Some("csv" | "txt" | "md" | "json" | "svg") => binary_in_text(path),
        Some("png") => after_png_end(path),
        Some("pdf") => pdf_extras(path),
        _ => Ok(None),
    }
}

/// Calls `each` with every block of the file, the previous block's last `overlap` bytes
/// prepended, so a pattern that straddles two blocks is still seen whole.
fn blocks(path: &Path, overlap: usize, mut each: impl FnMut(u64, &[u8]) -> bool) -> io::Result<()> {
    let mut file = File::open(path)?;
    let mut buffer = vec![0u8; overlap + BLOCK];
    let (mut kept, mut offset) = (0usize, 0u64);
    loop {
        let n = match file.read(&mut buffer[kept..]) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => other?,
        };
        if n == 0 {
            return Ok(());
        }
        let filled = kept + n;
        if !each(offset - kept as u64, &buffer[..filled]) {
            return Ok(());
        }
        offset += n as u64;
        kept = overlap.min(filled);
        buffer.copy_within(filled - kept..filled, 0);
    }
}

fn binary_in_text(path: &Path) -> io::Result<Option<String>> {
    let mut found = None;
    blocks(path, 0, |at, block| {
        let binary =
            block.iter().position(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c) || b == 0x7f);
        found = binary.map(|i| at + i as u64);
        found.is_none()
    })?;
    Ok(found
        .map(|at| format!("binary data at byte {at} of a text file: archives and executables hide this way")))
}

fn after_png_end(path: &Path) -> io::Result<Option<String>> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut position = 8u64; // the signature, which the type sniffing checked
    loop {
        let mut header = [0u8; 8];
        file.seek(SeekFrom::Start(position))?;
        if file.read_exact(&mut header).is_err() {
            return Ok(None); // cut short: nothing appended, and the reviewers see it is broken
        }
        let length = u64::from(u32::from_be_bytes([header[0], header[1], header[2], header[3]]));
        position += 12 + length; // length, type, data, CRC
        if &header[4..] == b"IEND" {
            return Ok((position < size).then(|| {
                format!(
                    "{} bytes after the image's end (IEND): another file may be appended",
                    size - position
                )
            }));
        }
        if position > size {
            return Ok(None); // not a PNG past its signature: the content review catches it
        }
    }
}

fn pdf_extras(path: &Path) -> io::Result<Option<String>> {
    let (end_marker, embedded, launch) = (
        memmem::FinderRev::new(b"%%EOF"),
        memmem::Finder::new(b"/EmbeddedFile"),
        memmem::Finder::new(b"/Launch"),
    );
    let (mut last_end, mut trailing, mut extra) = (None::<u64>, false, None);
    blocks(path, 16, |at, block| {
        if embedded.find(block).is_some() {
            extra = Some("a file embedded in the PDF (/EmbeddedFile)");
            return false;
        }
        if launch.find(block).is_some() {
            extra = Some("a launch action in the PDF (/Launch)");
            return false;
        }
        if let Some(i) = end_marker.rfind(block) {
            last_end = Some(at + i as u64);
            let after = &block[i + 5..];
            trailing = after.iter().any(|b| !b.is_ascii_whitespace());
        } else if last_end.is_some() && block.iter().skip(16).any(|b| !b.is_ascii_whitespace()) {
            trailing = true;
        }
        true
    })?;
    if let Some(extra) = extra {
        return Ok(Some(extra.into()));
    }
    Ok(match (last_end, trailing) {
        (None, _) => None, // cut short or not a PDF past its header: for the content review
        (Some(_), true) => Some("data after the PDF's last %%EOF: another file may be appended".into()),
        (Some(_), false) => None,
    })
}
