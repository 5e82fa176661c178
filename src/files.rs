//! Files written whole and crash-safely: the history's sealed blocks, the rule state, the
//! actions' outbox and audit log are each replaced by a complete new version or not at all.
//!
//! Owns the write pattern only (temporary file, fsync, rename, fsync of the folder); what goes
//! into a file, and where, is its owner's. Errors are `std::io::Error`s whose message names
//! the file or folder that failed, so the owner can log them as they are.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

fn io_context(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Writes `bytes` to `path` crash-safely: temporary file (`path` with the extension `tmp`),
/// fsync, rename, fsync of the folder. After a crash the file holds the old bytes or the new
/// ones, never a mix; a failed attempt removes its temporary file.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("state.json");
/// ipfs_sentinel::files::write_atomically(&path, b"{\"v\":1}").unwrap();
/// ipfs_sentinel::files::write_atomically(&path, b"{\"v\":2}").unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"{\"v\":2}");
/// assert!(!dir.path().join("state.tmp").exists());
/// ```
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let written = File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        // A full disk must not stay fuller for the attempt.
        let _ = fs::remove_file(&tmp);
        return Err(io_context(&tmp, e));
    }
    if let Some(parent) = path.parent() {
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_context(parent, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_names_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        // A folder in the way: the temporary file is written, the rename fails.
        let in_the_way = dir.path().join("state");
        fs::create_dir(&in_the_way).unwrap();
        fs::write(in_the_way.join("inside"), b"x").unwrap();
        let e = write_atomically(&in_the_way, b"new").unwrap_err();
        assert!(e.to_string().contains("state.tmp"), "{e}");
        assert!(!dir.path().join("state.tmp").exists());
        let missing = dir.path().join("no-such-folder").join("state.json");
        let e = write_atomically(&missing, b"x").unwrap_err();
        assert!(e.to_string().contains("no-such-folder"), "{e}");
    }
}
