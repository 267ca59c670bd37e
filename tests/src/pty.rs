//! A pseudo-terminal for the terminal tests: the test plays the user at a terminal whose slave
//! side is the stdin, stdout, stderr and controlling terminal of what it starts (ocirun, or a
//! shell that starts ocirun), and whose master side the test reads, types into and resizes.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::stat::Mode;

/// What the master side has shown so far, and a condition variable signalled on each read.
type Screen = Arc<(Mutex<Vec<u8>>, Condvar)>;

/// A pseudo-terminal pair; a thread collects everything written to the terminal.
#[derive(Debug)]
pub struct Pty {
    master: OwnedFd,
    /// `None` only while dropping.
    slave: Option<OwnedFd>,
    screen: Screen,
    /// Detached when dropped: it ends once no process holds the terminal any more.
    _reader: JoinHandle<()>,
}

impl Pty {
    /// A new terminal of `rows` x `cols` characters. Both sides are close-on-exec and neither
    /// becomes the test's controlling terminal.
    ///
    /// # Panics
    /// If the pseudo-terminal cannot be made.
    pub fn open(rows: u16, cols: u16) -> Self {
        let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
            .expect("posix_openpt");
        nix::pty::grantpt(&master).expect("grantpt");
        nix::pty::unlockpt(&master).expect("unlockpt");
        let name = nix::pty::ptsname_r(&master).expect("ptsname_r");
        let slave = nix::fcntl::open(
            name.as_str(),
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap_or_else(|e| panic!("cannot open the terminal {name}: {e}"));
        let master: OwnedFd = master.into();
        let screen: Screen = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let mut from = File::from(master.try_clone().expect("dup the master"));
        let shown = Arc::clone(&screen);
        let reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                match from.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        let (bytes, cond) = &*shown;
                        bytes
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .extend_from_slice(&chunk[..n]);
                        cond.notify_all();
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    // EIO: every slave fd is closed.
                    Err(_) => break,
                }
            }
        });
        let pty = Self {
            master,
            slave: Some(slave),
            screen,
            _reader: reader,
        };
        pty.resize(rows, cols);
        pty
    }

    /// `setsid --ctty PROGRAM ARGS...` with this terminal as stdin, stdout and stderr: the
    /// program runs as the leader of a new session whose controlling terminal this is (so the
    /// kernel sends it SIGWINCH on resize), with its own pid (setsid execs it).
    ///
    /// # Panics
    /// If the terminal cannot be duplicated.
    pub fn command<I, S>(&self, program: impl AsRef<OsStr>, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("setsid");
        cmd.arg("--ctty")
            .arg(program)
            .args(args)
            .stdin(self.slave_stdio())
            .stdout(self.slave_stdio())
            .stderr(self.slave_stdio());
        cmd
    }

    /// The terminal as a child's stdio (a new fd for the slave's open file description).
    ///
    /// # Panics
    /// If the fd cannot be duplicated.
    pub fn slave_stdio(&self) -> Stdio {
        Stdio::from(self.slave().try_clone().expect("dup the terminal"))
    }

    /// Sets the terminal's size in one TIOCSWINSZ (tcsetwinsize), as a terminal emulator does;
    /// the kernel sends SIGWINCH to its foreground process group. (`stty rows R cols C` sets
    /// the rows and the columns one after the other, so a slow reader could see the size in
    /// between.)
    ///
    /// # Panics
    /// If the ioctl fails.
    pub fn resize(&self, rows: u16, cols: u16) {
        let slave = self.slave.as_ref().expect("the terminal is open");
        let size = rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(slave, size)
            .unwrap_or_else(|e| panic!("cannot resize the terminal to {rows}x{cols}: {e}"));
    }

    /// The terminal's settings as `stty -g` prints them (one line, no newline).
    ///
    /// # Panics
    /// If stty fails.
    pub fn settings(&self) -> String {
        let out = Command::new("stty")
            .arg("-g")
            .stdin(self.slave_stdio())
            .output()
            .expect("cannot run stty -g");
        assert!(out.status.success(), "stty -g: {}", out.status);
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
    }

    /// Whether the slave's open file description, shared by everything started on this
    /// terminal, is non-blocking (`O_NONBLOCK`).
    ///
    /// # Panics
    /// If fcntl fails.
    pub fn is_nonblocking(&self) -> bool {
        OFlag::from_bits_retain(fcntl(self.slave().as_fd(), FcntlArg::F_GETFL).expect("F_GETFL"))
            .contains(OFlag::O_NONBLOCK)
    }

    /// Types `bytes` at the terminal (writes them to the master).
    ///
    /// # Panics
    /// If the write fails.
    pub fn type_bytes(&self, bytes: &[u8]) {
        File::from(self.master.try_clone().expect("dup the master"))
            .write_all(bytes)
            .expect("cannot type at the terminal");
    }

    /// Everything written to the terminal so far.
    pub fn output(&self) -> Vec<u8> {
        self.screen
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// [`Pty::output`] as text (lossily decoded).
    pub fn output_text(&self) -> String {
        String::from_utf8_lossy(&self.output()).into_owned()
    }

    /// Waits until the terminal shows `needle` (counting from the start), at most `timeout`;
    /// returns everything shown so far.
    ///
    /// # Panics
    /// On timeout, with what the terminal showed.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let (bytes, cond) = &*self.screen;
        let mut shown = bytes.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let text = String::from_utf8_lossy(&shown).into_owned();
            if text.contains(needle) {
                return text;
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "the terminal did not show {needle:?} within {timeout:?}; it showed {text:?}"
            );
            shown = cond
                .wait_timeout(shown, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Pty {
    fn slave(&self) -> &OwnedFd {
        self.slave
            .as_ref()
            .expect("the terminal is open until dropped")
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        // Closing the test's slave fd lets the reader end (EIO) once no process holds the
        // terminal any more.
        drop(self.slave.take());
    }
}

/// Waits for `child` at most `timeout`; on timeout kills it and panics saying `what`.
///
/// # Panics
/// On timeout, or when waiting fails.
pub fn wait_with_timeout(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("cannot wait for the child") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {timeout:?}: killed it");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
