//! The little-endian fields gitkit's binary caches are made of (see `cache.rs` and
//! `index.rs`): fixed widths, read back with every length checked before it is used.

use std::io::{Read, Write};

use super::id::Hash;

/// A cache file's first bytes: its kind and layout version, so that another file (or an older
/// gitkit's JSON) is never read as one.
pub fn check_magic(input: &mut impl Read, magic: &[u8; 16]) -> std::io::Result<()> {
    if &bytes::<16>(input)? != magic {
        return Err(bad());
    }
    Ok(())
}

pub fn bytes<const N: usize>(input: &mut (impl Read + ?Sized)) -> std::io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    input.read_exact(&mut bytes)?;
    Ok(bytes)
}

pub fn u32(input: &mut (impl Read + ?Sized)) -> std::io::Result<u32> {
    bytes(input).map(u32::from_le_bytes)
}

pub fn u64(input: &mut (impl Read + ?Sized)) -> std::io::Result<u64> {
    bytes(input).map(u64::from_le_bytes)
}

pub fn hash(input: &mut (impl Read + ?Sized)) -> std::io::Result<Hash> {
    bytes(input).map(Hash)
}

/// A count of things that follow, refused above `max` before anything is made room for.
pub fn count(input: &mut (impl Read + ?Sized), max: usize) -> std::io::Result<usize> {
    let count = u32(input)? as usize;
    if count > max {
        return Err(bad());
    }
    Ok(count)
}

pub fn put_u32(out: &mut (impl Write + ?Sized), value: u32) -> std::io::Result<()> {
    out.write_all(&value.to_le_bytes())
}

pub fn put_u64(out: &mut (impl Write + ?Sized), value: u64) -> std::io::Result<()> {
    out.write_all(&value.to_le_bytes())
}

/// Not a cache this gitkit wrote.
pub fn bad() -> std::io::Error {
    std::io::Error::from(std::io::ErrorKind::InvalidData)
}
