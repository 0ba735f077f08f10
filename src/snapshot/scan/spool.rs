//! The scan's list of what it found, in order: written once, then read once per pass over the
//! workspace. Held in memory while small, in an unnamed temporary file past [`IN_MEMORY`], so
//! that a workspace of any size costs the same memory.

use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

use tempfile::SpooledTempFile;

use super::super::binary;
use super::super::cache::{MAX_PATH, Stat};
use super::super::manifest::RelPath;
use super::Found;

/// About 30,000 files' worth: past this the list goes to a file.
const IN_MEMORY: usize = 2 << 20;

pub struct Spool {
    file: BufWriter<SpooledTempFile>,
    len: u64,
}

impl Spool {
    /// An empty list, whose file (if it comes to one) is made in `dir`.
    pub fn new_in(dir: &Path) -> Self {
        Self {
            file: BufWriter::with_capacity(64 << 10, SpooledTempFile::new_in(IN_MEMORY, dir)),
            len: 0,
        }
    }

    /// Adds `found` at the end; only before the list is first replayed.
    pub fn push(&mut self, found: &Found) -> std::io::Result<()> {
        let out = &mut self.file;
        binary::put_u32(out, found.path.0.len() as u32)?;
        out.write_all(&found.path.0)?;
        match &found.stat {
            None => out.write_all(&[0]),
            Some(stat) => {
                out.write_all(&[1])?;
                stat.write(out)
            }
        }?;
        self.len += 1;
        Ok(())
    }

    /// How many things were found.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The list from its start.
    pub fn replay(&mut self) -> std::io::Result<Replay<'_>> {
        self.file.flush()?;
        let file = self.file.get_mut();
        file.rewind()?;
        Ok(Replay {
            input: BufReader::with_capacity(64 << 10, file),
            left: self.len,
            error: None,
        })
    }
}

/// The list, read from its start. It ends early if it cannot be read: [`Replay::finish`]
/// tells, and a pass that used it must not count as done. (A reader that stops early has
/// not met an error.)
pub struct Replay<'a> {
    input: BufReader<&'a mut SpooledTempFile>,
    left: u64,
    error: Option<std::io::Error>,
}

impl Replay<'_> {
    /// Whether the list could be read as far as it was.
    pub fn finish(self) -> std::io::Result<()> {
        self.error.map_or(Ok(()), Err)
    }

    fn read(&mut self) -> std::io::Result<Found> {
        let input = &mut self.input;
        let path_len = binary::u32(input)? as usize;
        if path_len > MAX_PATH {
            return Err(binary::bad());
        }
        let mut path = vec![0u8; path_len];
        input.read_exact(&mut path)?;
        let stat = match binary::bytes::<1>(input)? {
            [0] => None,
            [1] => Some(Stat::read(input)?),
            _ => return Err(binary::bad()),
        };
        Ok(Found {
            path: RelPath(path),
            stat,
        })
    }
}

impl Iterator for Replay<'_> {
    type Item = Found;

    fn next(&mut self) -> Option<Found> {
        if self.left == 0 || self.error.is_some() {
            return None;
        }
        match self.read() {
            Ok(found) => {
                self.left -= 1;
                Some(found)
            }
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(path: &str, stat: Option<Stat>) -> Found {
        Found {
            path: RelPath(path.as_bytes().to_vec()),
            stat,
        }
    }

    #[test]
    fn what_goes_in_comes_out_in_order_as_often_as_asked_in_memory_or_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let stat = Stat {
            size: 7,
            mtime_ns: -3,
            ctime_ns: 1_700_000_000_123_456_789,
            ino: u64::MAX,
            dev: 42,
            mode: 0o100644,
        };
        // Enough to pass the in-memory limit.
        let count = IN_MEMORY / 40;
        let mut spool = Spool::new_in(dir.path());
        for i in 0..count {
            let stat = (i % 3 != 0).then_some(Stat {
                size: i as u64,
                ..stat
            });
            spool.push(&found(&format!("dir/{i:08}"), stat)).unwrap();
        }
        assert_eq!(spool.len(), count as u64);
        spool.file.flush().unwrap();
        assert!(spool.file.get_ref().is_rolled(), "past the limit, on disk");
        for _ in 0..2 {
            let mut replay = spool.replay().unwrap();
            let mut seen = 0;
            for (i, f) in replay.by_ref().enumerate() {
                assert_eq!(f.path.0, format!("dir/{i:08}").as_bytes());
                assert_eq!(
                    f.stat,
                    (i % 3 != 0).then_some(Stat {
                        size: i as u64,
                        ..stat
                    })
                );
                seen += 1;
            }
            replay.finish().unwrap();
            assert_eq!(seen, count);
        }
    }
}
