//! The `hook_security = "strict"` rule: whether a hook program may be run (as root). It owns
//! the check only; [`super::hooks::HookRunner`] applies it when a hook is about to start and
//! decides what a refusal means.
//!
//! A hook is trusted when nobody but root can change what runs: the program is a regular
//! executable file, and it and every directory on the way to it, from `/` down, are owned by
//! root and writable neither by group nor by others. Symbolic links are resolved component by
//! component, so the directory holding a link and every directory its target passes through are
//! checked too (a root-owned target reached through a link in a writable directory is refused).
//! A world-writable directory with the sticky bit (like `/tmp`) is refused as well: hooks do not
//! belong in a shared scratch directory.
//!
//! Cost: [`check`] runs on the daemon's loop thread, at every hook start: one `lstat` per path
//! component (and a `readlink` per symbolic link), microseconds on a local file system. It
//! blocks as long as the file system does, so hooks belong on local disk; the spawn that
//! follows (`execve` of the same file) would block on a hung network mount just the same.

use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Most symbolic links followed while resolving one hook path (the kernel's own limit).
const MAX_SYMLINKS: usize = 40;

/// Checks `program` (a hook's `argv[0]`) under the strict rule. `Err` holds why it is refused,
/// naming the offending path, e.g. `/x is writable by group (mode 0775)`.
///
/// A path that does not resolve (a component missing, or not a directory) is not refused: every
/// directory before the missing part has passed, so only root could create it, and the spawn
/// that follows fails and says why. Any other error while inspecting is a refusal: what cannot
/// be verified does not run.
pub fn check(program: &Path) -> Result<(), String> {
    if !program.is_absolute() {
        return Err(format!("{} is not an absolute path", program.display()));
    }
    let mut dir = PathBuf::from("/");
    inspect(&dir).and_then(|meta| judge(&dir, &meta, Kind::Directory))?;
    // Components still to resolve, the next one last.
    let mut rest: Vec<OsString> = Vec::new();
    push_components(&mut rest, program);
    let mut links = 0;
    while let Some(name) = rest.pop() {
        if name == ".." {
            // `dir` never contains a link, so its parent is the lexical one.
            dir.pop();
            continue;
        }
        let path = dir.join(&name);
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if does_not_resolve(&e) => return Ok(()),
            Err(e) => return Err(format!("cannot inspect {}: {e}", path.display())),
        };
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(format!(
                    "{} has more than {MAX_SYMLINKS} symbolic links on its way",
                    program.display()
                ));
            }
            let target = fs::read_link(&path)
                .map_err(|e| format!("cannot read symbolic link {}: {e}", path.display()))?;
            if target.is_absolute() {
                dir = PathBuf::from("/");
            }
            push_components(&mut rest, &target);
            continue;
        }
        if rest.is_empty() {
            return judge(&path, &meta, Kind::Program);
        }
        if !meta.is_dir() {
            return Ok(()); // not a directory: the spawn fails with ENOTDIR
        }
        judge(&path, &meta, Kind::Directory)?;
        dir = path;
    }
    // The path ended on a directory (`/`, or `..` last).
    Err(format!("{} is not a regular file", dir.display()))
}

/// Pushes the components of `path` onto `rest` so that they pop in order (`.` and `/` dropped).
fn push_components(rest: &mut Vec<OsString>, path: &Path) {
    for component in path.components().rev() {
        match component {
            Component::Normal(name) => rest.push(name.to_os_string()),
            Component::ParentDir => rest.push("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
}

fn inspect(path: &Path) -> Result<Metadata, String> {
    fs::symlink_metadata(path).map_err(|e| format!("cannot inspect {}: {e}", path.display()))
}

fn does_not_resolve(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// What a checked path is on the hook's way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A directory above the program.
    Directory,
    /// The program itself.
    Program,
}

fn judge(path: &Path, meta: &Metadata, kind: Kind) -> Result<(), String> {
    let kind_ok = match kind {
        Kind::Directory => meta.is_dir(),
        Kind::Program => meta.is_file(),
    };
    if !kind_ok {
        let what = match kind {
            Kind::Directory => "a directory",
            Kind::Program => "a regular file",
        };
        return Err(format!("{} is not {what}", path.display()));
    }
    match problem(meta.uid(), meta.mode(), kind) {
        Some(problem) => Err(format!("{} {problem}", path.display())),
        None => Ok(()),
    }
}

/// Why a file of `kind` with owner `uid` and `mode` (as in `st_mode`) is not trusted, as the
/// predicate of a sentence about its path; `None` when it is.
fn problem(uid: u32, mode: u32, kind: Kind) -> Option<String> {
    let perms = mode & 0o7777;
    if uid != 0 {
        return Some(format!("is owned by uid {uid}, not root"));
    }
    let writers = match (perms & 0o020 != 0, perms & 0o002 != 0) {
        (true, true) => Some("group and others"),
        (true, false) => Some("group"),
        (false, true) => Some("others"),
        (false, false) => None,
    };
    if let Some(writers) = writers {
        let sticky = kind == Kind::Directory && perms & 0o1002 == 0o1002;
        let note = if sticky {
            "; the sticky bit does not help: a shared directory like /tmp is no place for hooks"
        } else {
            ""
        };
        return Some(format!("is writable by {writers} (mode {perms:04o}){note}"));
    }
    if kind == Kind::Program && perms & 0o111 == 0 {
        return Some(format!("is not executable (mode {perms:04o})"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_problem_is_named_with_the_mode() {
        use Kind::{Directory as Dir, Program as Prog};
        const STICKY: &str = "is writable by group and others (mode 1777); the sticky bit does \
                              not help: a shared directory like /tmp is no place for hooks";
        // (uid, st_mode, kind, the problem; None: trusted)
        #[rustfmt::skip]
        let cases = [
            (0,     0o40755,  Dir,  None),
            (0,     0o100755, Prog, None),
            (0,     0o100700, Prog, None),
            (0,     0o104755, Prog, None), // setuid is not our concern
            (0,     0o40644,  Dir,  None), // x on directories: not ours
            (0,     0o40775,  Dir,  Some("is writable by group (mode 0775)")),
            (0,     0o100757, Prog, Some("is writable by others (mode 0757)")),
            (0,     0o40777,  Dir,  Some("is writable by group and others (mode 0777)")),
            (0,     0o41777,  Dir,  Some(STICKY)),
            (65534, 0o100755, Prog, Some("is owned by uid 65534, not root")),
            (0,     0o100644, Prog, Some("is not executable (mode 0644)")),
        ];
        for (uid, mode, kind, want) in cases {
            let got = problem(uid, mode, kind);
            assert_eq!(got.as_deref(), want, "uid {uid}, mode {mode:o}, {kind:?}");
        }
    }

    #[test]
    fn relative_paths_are_refused() {
        assert_eq!(
            check(Path::new("hooks/web")),
            Err("hooks/web is not an absolute path".to_string())
        );
    }

    #[test]
    fn a_path_that_does_not_resolve_is_left_to_the_spawn() {
        assert_eq!(check(Path::new("/nonexistent-relevo-dir/hook")), Ok(()));
    }
}
