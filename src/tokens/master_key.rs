//! The master key: AES-256-GCM over signing keys' private halves, so a copy of the database
//! alone cannot mint tokens.

use std::path::Path;

use crate::domain::random;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

const SEALED_VERSION: &str = "v1:";

/// The key that seals, and optionally the one it replaces: values sealed under the previous
/// key still open while they are re-sealed (`keygate master-key rewrap`).
pub struct MasterKey {
    current: LessSafeKey,
    previous: Option<LessSafeKey>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// Parses 32 bytes given as base64 (standard or URL-safe, padded or not).
    pub fn parse(encoded: &str) -> anyhow::Result<MasterKey> {
        let trimmed = encoded.trim();
        let bytes = STANDARD
            .decode(trimmed)
            .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed.trim_end_matches('=')))
            .map_err(|_| anyhow::anyhow!("KEYGATE_MASTER_KEY is not base64"))?;
        anyhow::ensure!(
            bytes.len() == 32,
            "KEYGATE_MASTER_KEY must be 32 bytes (it has {}); make one with `openssl rand -base64 32`",
            bytes.len()
        );
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| anyhow::anyhow!("bad key"))?;
        Ok(MasterKey {
            current: LessSafeKey::new(key),
            previous: None,
        })
    }

    /// This key, still opening what `previous` sealed.
    pub fn replacing(self, previous: MasterKey) -> MasterKey {
        MasterKey {
            previous: Some(previous.current),
            ..self
        }
    }

    /// Whether a previous key is given.
    pub fn has_previous(&self) -> bool {
        self.previous.is_some()
    }

    pub fn generate_encoded() -> String {
        let mut bytes = [0u8; 32];
        random::fill(&mut bytes);
        STANDARD.encode(bytes)
    }

    /// The key kept in `path`, made there (readable by its owner only) when the file does not
    /// exist yet; the flag says whether it was made now. A file that other users can read is
    /// refused: whoever reads it can mint tokens.
    pub fn load_or_create(path: &Path) -> anyhow::Result<(MasterKey, bool)> {
        match std::fs::read_to_string(path) {
            Ok(existing) => {
                refuse_if_shared(path)?;
                return Ok((MasterKey::parse(&existing)?, false));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => anyhow::bail!("cannot read the master key file {}: {e}", path.display()),
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let encoded = Self::generate_encoded();
        write_private(path, &encoded)?;
        Ok((MasterKey::parse(&encoded)?, true))
    }

    /// Encrypts `plaintext`; `context` (the key id) is bound as associated data, so a sealed
    /// value cannot be moved to another row.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        random::fill(&mut nonce);
        let mut buf = plaintext.to_vec();
        self.current
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut buf,
            )
            .expect("AES-GCM sealing cannot fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        format!("{SEALED_VERSION}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// Decrypts what [`MasterKey::seal`] made under this key, or under the previous one.
    pub fn open(&self, context: &str, sealed: &str) -> anyhow::Result<Vec<u8>> {
        self.open_telling(context, sealed).map(|(plain, _)| plain)
    }

    /// Like [`MasterKey::open`], and says whether it took the previous key to open it.
    pub fn open_telling(&self, context: &str, sealed: &str) -> anyhow::Result<(Vec<u8>, bool)> {
        let encoded = sealed
            .strip_prefix(SEALED_VERSION)
            .ok_or_else(|| anyhow::anyhow!("unknown sealed-key format"))?;
        let bytes = URL_SAFE_NO_PAD.decode(encoded)?;
        anyhow::ensure!(bytes.len() > NONCE_LEN, "sealed key is truncated");
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        if let Some(plain) = open_with(&self.current, nonce, context, rest) {
            return Ok((plain, false));
        }
        if let Some(plain) = self
            .previous
            .as_ref()
            .and_then(|previous| open_with(previous, nonce, context, rest))
        {
            return Ok((plain, true));
        }
        anyhow::bail!(
            "KEYGATE_MASTER_KEY does not open the signing keys stored in the database; \
             every instance must use the key that created them (while changing it, give the \
             old one as KEYGATE_PREVIOUS_MASTER_KEY)"
        )
    }
}

fn open_with(key: &LessSafeKey, nonce: &[u8], context: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buf = sealed.to_vec();
    key.open_in_place(nonce, Aad::from(context), &mut buf)
        .ok()
        .map(|plain| plain.to_vec())
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

#[cfg(unix)]
fn refuse_if_shared(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    anyhow::ensure!(
        mode & 0o077 == 0,
        "the master key file {} can be read by other users (mode {:o}); make it private with \
         `chmod 600 {}`",
        path.display(),
        mode & 0o777,
        path.display()
    );
    Ok(())
}

#[cfg(not(unix))]
fn refuse_if_shared(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_with_the_same_context() {
        let key = MasterKey::parse(&MasterKey::generate_encoded()).unwrap();
        let sealed = key.seal("kid-1", b"private bytes");
        assert!(!sealed.contains("private"));
        assert_eq!(key.open("kid-1", &sealed).unwrap(), b"private bytes");
    }

    #[test]
    fn another_key_or_context_cannot_open() {
        let key = MasterKey::parse(&MasterKey::generate_encoded()).unwrap();
        let other = MasterKey::parse(&MasterKey::generate_encoded()).unwrap();
        let sealed = key.seal("kid-1", b"x");
        assert!(other.open("kid-1", &sealed).is_err());
        assert!(key.open("kid-2", &sealed).is_err());
    }

    #[test]
    fn a_new_key_opens_what_its_previous_sealed_and_seals_with_itself() {
        let old = MasterKey::parse(&MasterKey::generate_encoded()).unwrap();
        let sealed_before = old.seal("kid-1", b"x");
        let encoded = MasterKey::generate_encoded();
        let new = MasterKey::parse(&encoded)
            .unwrap()
            .replacing(MasterKey::parse(&STANDARD.encode([1u8; 32])).unwrap());
        assert!(
            new.open("kid-1", &sealed_before).is_err(),
            "not the previous"
        );
        let new = MasterKey::parse(&encoded).unwrap().replacing(old);
        assert_eq!(
            new.open_telling("kid-1", &sealed_before).unwrap(),
            (b"x".to_vec(), true)
        );
        let resealed = new.seal("kid-1", b"x");
        assert_eq!(
            new.open_telling("kid-1", &resealed).unwrap(),
            (b"x".to_vec(), false)
        );
        let alone = MasterKey::parse(&encoded).unwrap();
        assert_eq!(alone.open("kid-1", &resealed).unwrap(), b"x");
        assert!(alone.open("kid-1", &sealed_before).is_err());
    }

    #[test]
    fn only_32_byte_base64_keys_parse() {
        assert!(MasterKey::parse("c2hvcnQ=").is_err());
        assert!(MasterKey::parse("not base64!").is_err());
        assert!(MasterKey::parse(&STANDARD.encode([7u8; 32])).is_ok());
        assert!(MasterKey::parse(&URL_SAFE_NO_PAD.encode([7u8; 32])).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_is_made_private_and_a_shared_one_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let (made, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(!created);
        let sealed = made.seal("k", b"x");
        assert_eq!(again.open("k", &sealed).unwrap(), b"x");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = MasterKey::load_or_create(&path).unwrap_err().to_string();
        assert!(refused.contains("chmod 600"), "{refused}");
    }
}
