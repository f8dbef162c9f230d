//! The `secretbox` provider's value format: a random 24-byte nonce, then NaCl secretbox
//! (XSalsa20-Poly1305) output, which is the 16-byte tag followed by the ciphertext. Like
//! upstream, no additional data is bound.

use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};

use crate::Error;

const NONCE_SIZE: usize = 24;
const OVERHEAD: usize = 16;

#[derive(Clone)]
pub(crate) struct Secretbox {
    key: [u8; 32],
}

impl Secretbox {
    /// Only 32-byte keys exist for secretbox.
    pub(crate) fn new(key: &[u8]) -> Option<Self> {
        Some(Self {
            key: key.try_into().ok()?,
        })
    }

    pub(crate) fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; NONCE_SIZE];
        getrandom::fill(&mut nonce).map_err(|_| Error::Random)?;
        self.encrypt_with_nonce(plaintext, &nonce)
    }

    fn encrypt_with_nonce(
        &self,
        plaintext: &[u8],
        nonce: &[u8; NONCE_SIZE],
    ) -> Result<Vec<u8>, Error> {
        let cipher = XSalsa20Poly1305::new(&self.key.into());
        // crypto_secretbox lays the tag out before the ciphertext, as NaCl (and Go) do.
        let sealed = cipher
            .encrypt(Nonce::from_slice(nonce), plaintext)
            .map_err(|_| Error::Encrypt("secretbox"))?;
        let mut out = Vec::with_capacity(NONCE_SIZE + sealed.len());
        out.extend_from_slice(nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub(crate) fn decrypt(&self, data: &[u8]) -> Result<Vec<u8>, Error> {
        if data.len() < NONCE_SIZE + OVERHEAD {
            return Err(Error::TooShort);
        }
        let (nonce, sealed) = data.split_at_checked(NONCE_SIZE).ok_or(Error::TooShort)?;
        let cipher = XSalsa20Poly1305::new(&self.key.into());
        cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| Error::SecretboxOpenFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let cipher = Secretbox::new(&[5u8; 32]).unwrap();
        for len in [0, 1, 64, 1000] {
            let plaintext = vec![b'z'; len];
            let stored = cipher.encrypt(&plaintext).unwrap();
            assert_eq!(stored.len(), 24 + 16 + len);
            assert_eq!(cipher.decrypt(&stored).unwrap(), plaintext);
        }
        let stored = cipher.encrypt_with_nonce(b"data", &[1u8; 24]).unwrap();
        let other = Secretbox::new(&[6u8; 32]).unwrap();
        assert_eq!(other.decrypt(&stored), Err(Error::SecretboxOpenFailed));
        let mut tampered = stored.clone();
        if let Some(b) = tampered.get_mut(30) {
            *b ^= 0x80;
        }
        assert_eq!(cipher.decrypt(&tampered), Err(Error::SecretboxOpenFailed));
        assert_eq!(cipher.decrypt(&stored[..39]), Err(Error::TooShort));
        assert!(Secretbox::new(&[0u8; 16]).is_none());
    }
}
