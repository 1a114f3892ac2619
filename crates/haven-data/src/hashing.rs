//! Streaming SHA-256: files are hashed in 64 KiB chunks so a multi-gigabyte output never has
//! to fit in memory.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

const CHUNK: usize = 64 * 1024;

/// The hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads `reader` to the end; returns its length and hex SHA-256.
pub(crate) fn hash_reader(reader: impl Read) -> io::Result<(u64, String)> {
    copy_hashing(reader, io::sink())
}

/// Copies `reader` into `writer` in one pass, returning the length and hex SHA-256 of the
/// bytes copied, so a copy and its checksum always describe the same bytes.
pub(crate) fn copy_hashing(mut reader: impl Read, mut writer: impl Write) -> io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = &buf[..n];
        hasher.update(chunk);
        writer.write_all(chunk)?;
        total += n as u64;
    }
    writer.flush()?;
    Ok((total, hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_and_hash_agree_with_a_one_shot_digest() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        let (len, hash) = copy_hashing(&data[..], &mut out).expect("copy");
        assert_eq!(out, data);
        assert_eq!(len, data.len() as u64);
        assert_eq!(hash, sha256_hex(&data));
        assert_eq!(hash_reader(&data[..]).expect("hash"), (len, hash));
    }

    #[test]
    fn empty_input_hashes_to_the_well_known_digest() {
        assert_eq!(
            hash_reader(io::empty()).expect("hash").1,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
