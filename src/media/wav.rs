//! The duration of a WAV (RIFF) file from its first bytes: the `fmt ` chunk's byte rate and
//! the `data` chunk's size. A data size of 0 or `0xFFFFFFFF` (written by streaming encoders)
//! is replaced by the rest of the file. Other formats (MP3, M4A, ...) are not read: their
//! seconds come from the provider's answer, or stay unknown.

/// Seconds of audio in a WAV file whose first bytes are `head` and whose length is `total`.
pub fn duration(head: &[u8], total: u64) -> Option<f64> {
    if head.len() < 12 || &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return None;
    }
    let u32_at = |at: usize| -> Option<u32> {
        head.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut at = 12usize;
    let mut byte_rate = None;
    while at + 8 <= head.len() {
        let id = &head[at..at + 4];
        let size = u32_at(at + 4)?;
        let body = at + 8;
        if id == b"fmt " {
            byte_rate = u32_at(body + 8).filter(|r| *r > 0);
        } else if id == b"data" {
            let rest = total.saturating_sub(body as u64);
            let data = if size == 0 || size == u32::MAX {
                rest
            } else {
                u64::from(size).min(rest)
            };
            return Some(data as f64 / f64::from(byte_rate?));
        }
        // Chunks are padded to an even size.
        at = body.checked_add(size as usize + (size as usize & 1))?;
    }
    None
}

/// A WAV header for `data_len` bytes of 16-bit mono PCM at `rate` Hz (tests and the mock).
pub fn header(rate: u32, data_len: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(44);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&data_len.saturating_add(36).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // PCM
    h.extend_from_slice(&1u16.to_le_bytes()); // mono
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * 2).to_le_bytes()); // byte rate
    h.extend_from_slice(&2u16.to_le_bytes()); // block align
    h.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pcm_durations() {
        let h = header(16_000, 32_000 * 3);
        assert_eq!(duration(&h, 44 + 96_000), Some(3.0));
        // A streaming header (size unknown): the rest of the file counts.
        let mut s = header(8_000, u32::MAX);
        s.truncate(44);
        assert_eq!(duration(&s, 44 + 8_000), Some(0.5));
        // A LIST chunk before data is skipped.
        let mut l = header(16_000, 32_000);
        let data = l.split_off(36);
        l.extend_from_slice(b"LIST");
        l.extend_from_slice(&3u32.to_le_bytes());
        l.extend_from_slice(b"abc\0");
        l.extend_from_slice(&data);
        assert_eq!(duration(&l, l.len() as u64 + 32_000), Some(1.0));
        assert_eq!(duration(b"ID3\x03 not a wav file", 1000), None);
        assert_eq!(duration(&h[..20], 1000), None);
    }
}
