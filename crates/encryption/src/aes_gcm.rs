//! The `aesgcm` provider's value format: a random 12-byte nonce, then AES-GCM ciphertext and
//! tag. The additional authenticated data is the caller's context (upstream: the etcd key), so a
//! value copied to another key does not decrypt.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, Payload};
use aes_gcm::{aead::consts::U12, AesGcm, Nonce};

use crate::Error;

const NONCE_SIZE: usize = 12;

#[derive(Clone)]
pub(crate) struct AesGcmCipher {
    key: Vec<u8>,
}

impl AesGcmCipher {
    /// Accepts 16, 24 or 32 bytes; validation has already rejected other sizes.
    pub(crate) fn new(key: &[u8]) -> Option<Self> {
        matches!(key.len(), 16 | 24 | 32).then(|| Self { key: key.to_vec() })
    }

    pub(crate) fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; NONCE_SIZE];
        getrandom::fill(&mut nonce).map_err(|_| Error::Random)?;
        self.encrypt_with_nonce(plaintext, aad, &nonce)
    }

    fn encrypt_with_nonce(
        &self,
        plaintext: &[u8],
        aad: &[u8],
        nonce: &[u8; NONCE_SIZE],
    ) -> Result<Vec<u8>, Error> {
        let n = Nonce::<U12>::from_slice(nonce);
        let payload = Payload {
            msg: plaintext,
            aad,
        };
        let sealed = match self.key.len() {
            16 => seal::<aes::Aes128>(&self.key, n, payload),
            24 => seal::<aes::Aes192>(&self.key, n, payload),
            _ => seal::<aes::Aes256>(&self.key, n, payload),
        }?;
        let mut out = Vec::with_capacity(NONCE_SIZE + sealed.len());
        out.extend_from_slice(nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub(crate) fn decrypt(&self, data: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
        let (nonce, sealed) = data.split_at_checked(NONCE_SIZE).ok_or(Error::TooShort)?;
        let n = Nonce::<U12>::from_slice(nonce);
        let payload = Payload { msg: sealed, aad };
        match self.key.len() {
            16 => open::<aes::Aes128>(&self.key, n, payload),
            24 => open::<aes::Aes192>(&self.key, n, payload),
            _ => open::<aes::Aes256>(&self.key, n, payload),
        }
    }
}

type Gcm<C> = AesGcm<C, U12>;

fn seal<C>(key: &[u8], nonce: &Nonce<U12>, payload: Payload<'_, '_>) -> Result<Vec<u8>, Error>
where
    Gcm<C>: KeyInit + Aead + AeadCore<NonceSize = U12>,
{
    let cipher = Gcm::<C>::new_from_slice(key).map_err(|_| Error::Encrypt("aes-gcm key"))?;
    cipher
        .encrypt(nonce, payload)
        .map_err(|_| Error::Encrypt("aes-gcm"))
}

fn open<C>(key: &[u8], nonce: &Nonce<U12>, payload: Payload<'_, '_>) -> Result<Vec<u8>, Error>
where
    Gcm<C>: KeyInit + Aead + AeadCore<NonceSize = U12>,
{
    let cipher = Gcm::<C>::new_from_slice(key).map_err(|_| Error::AuthenticationFailed)?;
    cipher
        .decrypt(nonce, payload)
        .map_err(|_| Error::AuthenticationFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_key_sizes() {
        for key_len in [16, 24, 32] {
            let cipher = AesGcmCipher::new(&vec![3u8; key_len]).unwrap();
            for len in [0, 1, 16, 100] {
                let plaintext = vec![b'y'; len];
                let stored = cipher
                    .encrypt(&plaintext, b"/registry/secrets/ns/a")
                    .unwrap();
                assert_eq!(stored.len(), 12 + len + 16);
                let back = cipher.decrypt(&stored, b"/registry/secrets/ns/a").unwrap();
                assert_eq!(back, plaintext);
            }
        }
    }

    #[test]
    fn binds_context_and_detects_tampering() {
        let cipher = AesGcmCipher::new(&[3u8; 32]).unwrap();
        let stored = cipher
            .encrypt_with_nonce(b"secret", b"key-a", &[0u8; 12])
            .unwrap();
        assert_eq!(
            cipher.decrypt(&stored, b"key-b"),
            Err(Error::AuthenticationFailed)
        );
        let mut tampered = stored.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        assert_eq!(
            cipher.decrypt(&tampered, b"key-a"),
            Err(Error::AuthenticationFailed)
        );
        assert_eq!(
            cipher.decrypt(&stored[..11], b"key-a"),
            Err(Error::TooShort)
        );
        // Nonce present but no tag: an authentication failure, as Go's Open reports it.
        assert_eq!(
            cipher.decrypt(&stored[..12], b"key-a"),
            Err(Error::AuthenticationFailed)
        );
    }
}
