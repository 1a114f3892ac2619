use super::*;

const PERMIT_KEY: [u8; 32] = [7; 32];

fn key() -> SealKey {
    SealKey::archive(&PERMIT_KEY).expect("key")
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn sealed(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    assert_eq!(seal(data, &mut out, &key()).expect("seal"), data.len() as u64);
    out
}

fn opened(bytes: &[u8], key: &SealKey) -> Result<Vec<u8>, SealError> {
    let mut out = Vec::new();
    open(bytes, &mut out, key).map(|_| out)
}

#[test]
fn sealed_data_opens_to_the_same_bytes_at_every_chunk_boundary() {
    for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17] {
        let data = plaintext(len);
        let bytes = sealed(&data);
        // Header, a tag per full chunk, and the (shorter) last chunk's tag.
        assert_eq!(bytes.len(), HEADER + len + (len / CHUNK + 1) * TAG, "len {len}");
        assert_eq!(opened(&bytes, &key()).expect("open"), data, "len {len}");
    }
}

#[test]
fn the_reader_returns_the_plaintext_whatever_the_read_size() {
    let data = plaintext(2 * CHUNK + 5);
    let bytes = sealed(&data);
    let mut reader = OpenReader::new(&bytes[..], &key()).expect("header");
    let mut out = Vec::new();
    let mut small = [0u8; 1000];
    loop {
        let n = reader.read(&mut small).expect("read");
        if n == 0 {
            break;
        }
        out.extend_from_slice(&small[..n]);
    }
    assert_eq!(out, data);
}

#[test]
fn sealed_bytes_do_not_contain_the_plaintext_and_differ_each_time() {
    let data = b"patient 9434765919 has outcome 3; patient 9434765870 has outcome 1".repeat(10);
    let (first, second) = (sealed(&data), sealed(&data));
    assert!(!first.windows(10).any(|w| w == b"9434765919"), "plaintext visible");
    assert_ne!(first, second, "a fresh nonce per file");
    assert_eq!(opened(&second, &key()).expect("open"), data);
}

#[test]
fn another_permits_key_cannot_open_it_and_says_so() {
    let bytes = sealed(b"results");
    let other = SealKey::archive(&[8; 32]).expect("key");
    match opened(&bytes, &other) {
        Err(SealError::WrongKey { sealed_with, given }) => {
            assert_eq!(sealed_with, key().fingerprint());
            assert_eq!(given, other.fingerprint());
        }
        other => panic!("expected a wrong-key error, got {other:?}"),
    }
}

#[test]
fn a_key_with_a_forged_key_id_still_fails_authentication() {
    // Copy the right key id into the header: only the real key decrypts.
    let mut bytes = sealed(b"results");
    let other = SealKey::archive(&[8; 32]).expect("key");
    bytes[MAGIC.len() + 1..][..KEY_ID].copy_from_slice(&other.id);
    assert!(matches!(opened(&bytes, &other), Err(SealError::Tampered { chunk: 0 })));
}

#[test]
fn a_flipped_byte_anywhere_fails_to_open() {
    let data = plaintext(CHUNK + 100);
    let bytes = sealed(&data);
    for at in [MAGIC.len() + 1 + KEY_ID, HEADER - 1, HEADER, HEADER + CHUNK + TAG - 1, bytes.len() - 1] {
        let mut tampered = bytes.clone();
        tampered[at] ^= 0x01;
        let chunk = u64::from(at >= HEADER + CHUNK + TAG);
        match opened(&tampered, &key()) {
            Err(SealError::Tampered { chunk: failed }) => assert_eq!(failed, chunk, "byte {at}"),
            other => panic!("byte {at}: expected tampering, got {other:?}"),
        }
    }
    let mut magic = bytes.clone();
    magic[0] ^= 0x01;
    assert!(matches!(opened(&magic, &key()), Err(SealError::NotSealed)));
    let mut version = bytes;
    version[MAGIC.len()] = 9;
    assert!(matches!(opened(&version, &key()), Err(SealError::UnsupportedVersion(9))));
}

#[test]
fn a_file_cut_short_anywhere_fails_to_open() {
    let bytes = sealed(&plaintext(2 * CHUNK + 100));
    // At a chunk boundary (the last chunk dropped) and inside the last chunk.
    let boundary = HEADER + 2 * (CHUNK + TAG);
    assert!(matches!(opened(&bytes[..boundary], &key()), Err(SealError::Truncated)));
    assert!(matches!(opened(&bytes[..bytes.len() - 1], &key()), Err(SealError::Tampered { chunk: 2 })));
    // Inside a full chunk: it becomes a short "last" chunk, which the last-chunk flag refuses.
    assert!(matches!(opened(&bytes[..boundary - 1], &key()), Err(SealError::Tampered { chunk: 1 })));
    // Only the header left.
    assert!(matches!(opened(&bytes[..HEADER], &key()), Err(SealError::Truncated)));
    // An empty file is not sealed at all.
    assert!(matches!(opened(&[], &key()), Err(SealError::NotSealed)));
}

#[test]
fn reordered_or_appended_chunks_fail_to_open() {
    let bytes = sealed(&plaintext(2 * CHUNK + 100));
    let (header, rest) = bytes.split_at(HEADER);
    let (first, rest) = rest.split_at(CHUNK + TAG);
    let (second, last) = rest.split_at(CHUNK + TAG);
    let swapped = [header, second, first, last].concat();
    assert!(matches!(opened(&swapped, &key()), Err(SealError::Tampered { chunk: 0 })));
    let appended = [&bytes[..], b"more"].concat();
    assert!(matches!(opened(&appended, &key()), Err(SealError::Tampered { chunk: 2 })));
}

#[test]
fn each_purpose_s_key_is_derived_deterministically_and_never_printed() {
    assert_eq!(key().key, SealKey::archive(&PERMIT_KEY).expect("key").key);
    assert_ne!(key().key, PERMIT_KEY, "derived, not the permit key itself");
    assert_ne!(key().key, SealKey::archive(&[8; 32]).expect("key").key);
    let shown = format!("{:?}", key());
    assert!(shown.contains(&key().fingerprint()) && shown.contains("haven archive v1"), "{shown}");
    assert!(!shown.contains(&hex::encode(key().key)) && !shown.contains("[7, 7"), "{shown}");
    assert!(key().fingerprint().starts_with("sha256:") && key().fingerprint().len() == 23);
    assert!(matches!(SealKey::archive(&[1; 16]), Err(SealError::KeyTooShort(16))));
    assert!(matches!(SealKey::quarantine(&[1; 16]), Err(SealError::KeyTooShort(16))));
}

#[test]
fn a_file_sealed_for_quarantine_does_not_open_with_the_archive_key() {
    let quarantine = SealKey::quarantine(&PERMIT_KEY).expect("key");
    assert_ne!(quarantine.key, key().key, "another purpose, another key");
    assert_eq!(quarantine.key, SealKey::quarantine(&PERMIT_KEY).expect("key").key);
    let mut bytes = Vec::new();
    seal(&b"results"[..], &mut bytes, &quarantine).expect("seal");
    assert!(matches!(opened(&bytes, &key()), Err(SealError::WrongKey { .. })));
    assert_eq!(opened(&bytes, &quarantine).expect("open"), b"results");
}
