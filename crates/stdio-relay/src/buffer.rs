//! A fixed-size byte ring buffer: one per relayed direction.
//!
//! The relay reads straight into [`RingBuffer::spare_mut`] and writes straight from
//! [`RingBuffer::filled`], so a byte is copied only by the kernel. Both return the first
//! contiguous region; after a wrap the rest comes with the next call.

/// Bytes held per direction: 64 KiB, the default capacity of a Linux pipe.
pub(crate) const BUFFER_SIZE: usize = 64 * 1024;

/// A bounded FIFO of bytes.
#[derive(Debug)]
pub(crate) struct RingBuffer {
    buf: Box<[u8]>,
    /// Index of the oldest byte.
    head: usize,
    /// Number of bytes held.
    len: usize,
}

impl RingBuffer {
    /// An empty buffer that holds at most `capacity` bytes.
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(
            capacity > 0,
            "a ring buffer needs room for at least one byte"
        );
        Self {
            buf: vec![0; capacity].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }

    /// The oldest bytes held, as one contiguous slice (empty when the buffer is).
    pub(crate) fn filled(&self) -> &[u8] {
        let end = (self.head + self.len).min(self.buf.len());
        &self.buf[self.head..end]
    }

    /// Drops the `n` oldest bytes, after they were written out.
    pub(crate) fn consume(&mut self, n: usize) {
        assert!(n <= self.len, "consumed {n} bytes of {}", self.len);
        self.len -= n;
        self.head = if self.len == 0 {
            // Start over at the front: the next read gets the whole buffer in one piece.
            0
        } else {
            (self.head + n) % self.buf.len()
        };
    }

    /// Free space right after the newest byte, as one contiguous slice (empty when full).
    pub(crate) fn spare_mut(&mut self) -> &mut [u8] {
        let cap = self.buf.len();
        let tail = (self.head + self.len) % cap;
        let end = if tail < self.head || self.is_full() {
            self.head
        } else {
            cap
        };
        &mut self.buf[tail..end]
    }

    /// Keeps the `n` bytes just read into [`Self::spare_mut`].
    pub(crate) fn commit(&mut self, n: usize) {
        assert!(
            self.len + n <= self.buf.len(),
            "committed {n} bytes to a buffer holding {} of {}",
            self.len,
            self.buf.len()
        );
        self.len += n;
    }

    /// Drops everything held.
    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    #[test]
    fn empty_and_full() {
        let mut ring = RingBuffer::new(4);
        assert!(ring.is_empty());
        assert_eq!(ring.spare_mut().len(), 4);
        assert!(ring.filled().is_empty());
        ring.spare_mut().copy_from_slice(b"abcd");
        ring.commit(4);
        assert!(ring.is_full());
        assert!(ring.spare_mut().is_empty());
        assert_eq!(ring.filled(), b"abcd");
        ring.consume(4);
        assert!(ring.is_empty());
    }

    #[test]
    fn wraps_around_in_two_pieces() {
        let mut ring = RingBuffer::new(8);
        ring.spare_mut()[..6].copy_from_slice(b"abcdef");
        ring.commit(6);
        ring.consume(4);
        // "ef" at 4..6; free space is 6..8 then 0..4.
        assert_eq!(ring.spare_mut().len(), 2);
        ring.spare_mut().copy_from_slice(b"gh");
        ring.commit(2);
        assert_eq!(ring.spare_mut().len(), 4);
        ring.spare_mut()[..3].copy_from_slice(b"ijk");
        ring.commit(3);
        assert_eq!(ring.len(), 7);
        assert_eq!(ring.filled(), b"efgh");
        ring.consume(4);
        assert_eq!(ring.filled(), b"ijk");
        ring.consume(3);
        assert!(ring.is_empty());
    }

    /// Random-sized reads and writes against a `VecDeque` model: no byte lost or reordered.
    #[test]
    fn matches_a_fifo_model() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut ring = RingBuffer::new(97);
        let mut model = VecDeque::new();
        let mut produced = 0u8;
        let mut consumed = Vec::new();
        for _ in 0..20_000 {
            if next() % 2 == 0 {
                let spare = ring.spare_mut();
                let n = (next() as usize) % (spare.len() + 1);
                for byte in &mut spare[..n] {
                    *byte = produced;
                    model.push_back(produced);
                    produced = produced.wrapping_add(1);
                }
                ring.commit(n);
            } else {
                let filled = ring.filled();
                let n = (next() as usize) % (filled.len() + 1);
                consumed.extend_from_slice(&filled[..n]);
                ring.consume(n);
                for _ in 0..n {
                    model.pop_front();
                }
            }
            assert_eq!(ring.len(), model.len());
            assert!(ring.len() <= 97);
        }
        for (i, byte) in consumed.iter().enumerate() {
            assert_eq!(*byte, i as u8, "byte {i} out of order");
        }
    }
}
