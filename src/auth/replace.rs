//! Replacing a file the gate watches (an htpasswd or robots file) atomically: a
//! temp file beside it (mode 0600) is written, synced and renamed over it, then the
//! directory is synced. A reader, such as the gate reloading, sees the old file or
//! the new one, never half of one. A symlink is followed and its target replaced;
//! the owner and group of the file replaced are kept. Two concurrent edits are not
//! merged: the last rename wins.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// The mode of the file written.
const FILE_MODE: u32 = 0o600;
/// How many temp-file names are tried before giving up.
const TEMP_ATTEMPTS: u32 = 16;

/// Why a file could not be replaced. The old file is then unchanged, but for
/// [`Error::SyncDir`]: the new file is in place and may not survive a crash.
#[derive(Debug)]
pub(crate) enum Error {
    /// Writing the temp file or renaming it over the old one failed.
    Write(io::Error),
    /// The rename happened, but syncing the directory failed.
    SyncDir(io::Error),
}

/// Replaces the file at `path` (or a symlink's target) with `contents`, mode 0600.
pub(crate) fn replace(path: &Path, contents: &[u8]) -> Result<(), Error> {
    let write_error = Error::Write;
    let target = match fs::canonicalize(path) {
        Ok(real) => real,
        Err(e) if e.kind() == io::ErrorKind::NotFound => path.to_owned(),
        Err(e) => return Err(write_error(e)),
    };
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        let e = io::Error::new(io::ErrorKind::InvalidInput, "the path names no file");
        return Err(write_error(e));
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    // The replacement keeps the owner and group of the file it replaces, so a
    // `sudo registry-gate htpasswd add` does not lock out a gate running as
    // another user.
    let owner = fs::metadata(&target).ok().map(|m| (m.uid(), m.gid()));
    let (temp, file) = create_temp(dir, &name.to_string_lossy()).map_err(write_error)?;
    let written = owner
        .map_or(Ok(()), |(uid, gid)| {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
        })
        .and_then(|()| write_and_sync(file, contents))
        .and_then(|()| fs::rename(&temp, &target));
    if let Err(e) = written {
        // The temp file holds nothing the old file did not; a failure to remove it is moot.
        let _ = fs::remove_file(&temp);
        return Err(write_error(e));
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::SyncDir)
}

/// Creates a new, empty file `.{name}.{pid}-{n}.tmp` in `dir` with [`FILE_MODE`].
fn create_temp(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    let mut attempt = 0;
    loop {
        let temp = dir.join(format!(".{name}.{}-{attempt}.tmp", std::process::id()));
        let opened = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&temp);
        match opened {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt + 1 < TEMP_ATTEMPTS => {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Sets the mode exactly (the umask may have narrowed it), writes and syncs.
fn write_and_sync(mut file: File, contents: &[u8]) -> io::Result<()> {
    file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
    file.write_all(contents)?;
    file.sync_all()
}
