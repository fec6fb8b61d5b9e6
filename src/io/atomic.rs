//! The crash-safe file writer: [`write_atomically`] writes the bytes to a temporary file beside
//! the target, syncs it and renames it over the target, so an interrupted write leaves the
//! previous file whole. It knows nothing of what the bytes are; weight files, histories and
//! vocabularies all save through it.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use crate::{Error, Result};

/// Serializes saves within this process, so two threads saving to the same path cannot share a
/// temporary file (the temporary name is unique per process, not per call).
static SAVE_LOCK: Mutex<()> = Mutex::new(());

/// Writes `bytes` to a temporary file next to `path`, syncs it, and renames it over `path`.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically_with(path, bytes, create_temp)
}

/// A destination for [`write_atomically_with`]: written, then made durable.
trait Durable: Write {
    fn make_durable(&mut self) -> std::io::Result<()>;
}

impl Durable for File {
    fn make_durable(&mut self) -> std::io::Result<()> {
        self.sync_all()
    }
}

/// [`write_atomically`] with the temporary file opened by `open` (tests pass a writer that
/// fails midway, to show the previous file survives).
fn write_atomically_with<W: Durable>(
    path: &Path,
    bytes: &[u8],
    open: impl FnOnce(&Path) -> std::io::Result<W>,
) -> Result<()> {
    let Some(file_name) = path.file_name() else {
        let source = std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path does not name a file");
        return Err(io_err("save to", path)(source));
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp_name = OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);

    let _guard = SAVE_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    let mut file = open(&tmp).map_err(io_err("create the temporary file", &tmp))?;
    let written = (|| {
        file.write_all(bytes).map_err(io_err("write", &tmp))?;
        file.flush().map_err(io_err("write", &tmp))?;
        file.make_durable().map_err(io_err("sync", &tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(io_err("rename the temporary file onto", path))
    })();
    if let Err(e) = written {
        // Best effort: the error being reported is the one that matters.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir);
    Ok(())
}

/// Creates the temporary file, never following or reusing an existing entry, except a file left
/// by an interrupted save of an earlier process that had the same id.
fn create_temp(tmp: &Path) -> std::io::Result<File> {
    let open = || OpenOptions::new().write(true).create_new(true).open(tmp);
    match open() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // We hold SAVE_LOCK and the name carries our process id, so no save of ours is using
            // it: it is stale. Remove a stale file or link, but never a directory.
            match fs::symlink_metadata(tmp) {
                Ok(m) if !m.is_dir() => {
                    fs::remove_file(tmp)?;
                    open()
                }
                _ => Err(e),
            }
        }
        other => other,
    }
}

/// A closure wrapping an `std::io::Error` as [`Error::Io`] for `op` on `path`.
fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io { op, path: path.to_path_buf(), source }
}

/// Makes the rename durable (best effort; a directory cannot be opened for sync on Windows).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod interrupted_save {
    use super::*;
    use crate::Tensor;
    use crate::io::{load_tensors, save_tensors, save_tensors_to_bytes};

    /// Writes to a real temporary file but fails after `budget` bytes, like a full disk or a
    /// process killed midway.
    struct FailingWriter {
        file: File,
        budget: usize,
    }

    impl Write for FailingWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.budget == 0 {
                return Err(std::io::Error::other("simulated failure midway through the save"));
            }
            let n = buf.len().min(self.budget);
            self.budget -= n;
            self.file.write(&buf[..n])
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.file.flush()
        }
    }

    impl Durable for FailingWriter {
        fn make_durable(&mut self) -> std::io::Result<()> {
            self.file.sync_all()
        }
    }

    #[test]
    fn a_save_that_fails_midway_leaves_the_previous_file_intact() {
        let dir = std::env::temp_dir().join(format!("tensorgrad-interrupted-save-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("weights.safetensors");
        let old = vec![("w".to_string(), Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0], &[3]))];
        save_tensors(&path, &old, &[]).unwrap();
        let before = fs::read(&path).unwrap();

        let new = vec![("w".to_string(), Tensor::<f32>::from_vec(vec![9.0; 1000], &[1000]))];
        let bytes = save_tensors_to_bytes(&new, &[]).unwrap();
        for budget in [0, 1, 100, bytes.len() / 2, bytes.len() - 1] {
            let err = write_atomically_with(&path, &bytes, |tmp| Ok(FailingWriter { file: create_temp(tmp)?, budget }))
                .unwrap_err();
            assert!(err.to_string().contains("simulated failure"), "{err}");
            assert_eq!(fs::read(&path).unwrap(), before, "the previous file changed (budget {budget})");
            assert_eq!(load_tensors::<f32>(&path).unwrap()[0].1.to_vec(), vec![1.0, 2.0, 3.0]);
            let leftovers: Vec<_> =
                fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).filter(|e| e.path() != path).collect();
            assert!(leftovers.is_empty(), "temporary file left behind: {leftovers:?}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
