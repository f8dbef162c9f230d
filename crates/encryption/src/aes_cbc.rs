//! The `aescbc` provider's value format: a random 16-byte IV, then AES-CBC ciphertext of the
//! PKCS#7-padded plaintext. No authentication (upstream's format, kept byte for byte).

use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, KeyIvInit};

use crate::Error;

const BLOCK_SIZE: usize = 16;

/// An AES key of one of the three sizes validation allows.
#[derive(Clone)]
pub(crate) struct AesCbc {
    key: Vec<u8>,
}

impl AesCbc {
    /// Accepts 16, 24 or 32 bytes; validation has already rejected other sizes.
    pub(crate) fn new(key: &[u8]) -> Option<Self> {
        matches!(key.len(), 16 | 24 | 32).then(|| Self { key: key.to_vec() })
    }

    pub(crate) fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let mut iv = [0u8; BLOCK_SIZE];
        getrandom::fill(&mut iv).map_err(|_| Error::Random)?;
        self.encrypt_with_iv(plaintext, &iv)
    }

    /// Split out so tests can produce deterministic output.
    fn encrypt_with_iv(&self, plaintext: &[u8], iv: &[u8; BLOCK_SIZE]) -> Result<Vec<u8>, Error> {
        let pad = BLOCK_SIZE - plaintext.len() % BLOCK_SIZE;
        let mut out = Vec::with_capacity(BLOCK_SIZE + plaintext.len() + pad);
        out.extend_from_slice(iv);
        out.extend_from_slice(plaintext);
        // `pad` is 1..=16, so the cast cannot truncate.
        out.resize(BLOCK_SIZE + plaintext.len() + pad, pad as u8);
        let body = out.get_mut(BLOCK_SIZE..).ok_or(Error::Encrypt("aes-cbc"))?;
        let len = body.len();
        let res = match self.key.len() {
            16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(&self.key, iv)
                .ok()
                .and_then(|c| {
                    c.encrypt_padded_mut::<NoPadding>(body, len)
                        .ok()
                        .map(|_| ())
                }),
            24 => cbc::Encryptor::<aes::Aes192>::new_from_slices(&self.key, iv)
                .ok()
                .and_then(|c| {
                    c.encrypt_padded_mut::<NoPadding>(body, len)
                        .ok()
                        .map(|_| ())
                }),
            _ => cbc::Encryptor::<aes::Aes256>::new_from_slices(&self.key, iv)
                .ok()
                .and_then(|c| {
                    c.encrypt_padded_mut::<NoPadding>(body, len)
                        .ok()
                        .map(|_| ())
                }),
        };
        res.ok_or(Error::Encrypt("aes-cbc"))?;
        Ok(out)
    }

    pub(crate) fn decrypt(&self, data: &[u8]) -> Result<Vec<u8>, Error> {
        let (iv, body) = data.split_at_checked(BLOCK_SIZE).ok_or(Error::TooShort)?;
        if body.len() % BLOCK_SIZE != 0 {
            return Err(Error::InvalidBlockSize);
        }
        // An empty body passes both checks above; upstream then reads result[len-1] and panics.
        // We report it as unpadded data instead.
        if body.is_empty() {
            return Err(Error::InvalidPkcs7Data);
        }
        let mut buf = body.to_vec();
        let ok = match self.key.len() {
            16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(&self.key, iv)
                .ok()
                .and_then(|c| c.decrypt_padded_mut::<NoPadding>(&mut buf).ok().map(|_| ())),
            24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(&self.key, iv)
                .ok()
                .and_then(|c| c.decrypt_padded_mut::<NoPadding>(&mut buf).ok().map(|_| ())),
            _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(&self.key, iv)
                .ok()
                .and_then(|c| c.decrypt_padded_mut::<NoPadding>(&mut buf).ok().map(|_| ())),
        };
        ok.ok_or(Error::InvalidBlockSize)?;
        let pad = usize::from(*buf.last().ok_or(Error::InvalidPkcs7Data)?);
        if pad == 0 || pad > buf.len() {
            return Err(Error::InvalidPkcs7Data);
        }
        let size = buf.len() - pad;
        if buf
            .get(size..)
            .is_none_or(|tail| tail.iter().any(|&b| usize::from(b) != pad))
        {
            return Err(Error::InvalidPkcs7Padding);
        }
        buf.truncate(size);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_key_sizes_and_lengths() {
        for key_len in [16, 24, 32] {
            let cipher = AesCbc::new(&vec![7u8; key_len]).unwrap();
            for len in [0, 1, 15, 16, 17, 100] {
                let plaintext = vec![b'x'; len];
                let stored = cipher.encrypt(&plaintext).unwrap();
                // IV + padded body: a full pad block when the input is block aligned.
                assert_eq!(stored.len(), 16 + (len / 16 + 1) * 16);
                assert_eq!(cipher.decrypt(&stored).unwrap(), plaintext);
            }
        }
    }

    #[test]
    fn deterministic_layout() {
        let cipher = AesCbc::new(&[1u8; 16]).unwrap();
        let iv = [9u8; 16];
        let stored = cipher.encrypt_with_iv(b"abc", &iv).unwrap();
        assert_eq!(&stored[..16], &iv);
        assert_eq!(stored.len(), 32);
    }

    #[test]
    fn malformed_input_errors() {
        let cipher = AesCbc::new(&[1u8; 32]).unwrap();
        assert_eq!(cipher.decrypt(&[0u8; 15]), Err(Error::TooShort));
        assert_eq!(cipher.decrypt(&[0u8; 16]), Err(Error::InvalidPkcs7Data));
        assert_eq!(cipher.decrypt(&[0u8; 20]), Err(Error::InvalidBlockSize));
        let other = AesCbc::new(&[2u8; 32]).unwrap();
        // CBC has no tag: a wrong key is only caught by the padding check, so the IV is fixed
        // to keep this deterministic (a random one passes by chance 1 time in ~256).
        let stored = cipher
            .encrypt_with_iv(b"some plaintext", &[4u8; 16])
            .unwrap();
        assert!(other.decrypt(&stored).is_err());
    }

    #[test]
    fn rejects_bad_key_sizes() {
        for len in [0, 8, 15, 17, 31, 33, 64] {
            assert!(AesCbc::new(&vec![0u8; len]).is_none(), "{len}");
        }
    }
}
