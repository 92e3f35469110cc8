//! Timing a process: wall seconds, its CPU, and the CPU of the server
//! processes serving it, sampled from /proc.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// One timed process: wall seconds, its own CPU seconds (user + sys), and
/// the CPU seconds of the server processes serving TCP clients meanwhile
/// (backends and walsenders; sampled from /proc every 50 ms).
#[derive(Clone, Debug, Default)]
pub struct Run {
    pub wall: f64,
    pub cpu: f64,
    pub server: f64,
    /// CPU seconds per thread name of the client process (sampled).
    pub threads: Vec<(String, f64)>,
    /// The client process's peak resident memory, in bytes.
    pub peak_rss: u64,
}

/// Waits for `child` and returns its exit status and peak resident memory
/// in bytes (`ru_maxrss` of `wait4`, which reports on exactly that child).
pub fn wait_with_peak(child: &std::process::Child) -> Result<(std::process::ExitStatus, u64)> {
    use std::os::unix::process::ExitStatusExt;
    let pid = libc::pid_t::try_from(child.id())?;
    let mut status: libc::c_int = 0;
    // SAFETY: wait4 only writes into the two values we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e.into());
        }
    }
    let kib = u64::try_from(ru.ru_maxrss).unwrap_or(0);
    Ok((std::process::ExitStatus::from_raw(status), kib * 1024))
}

/// CPU seconds (user + sys) used so far by this process (`RUSAGE_SELF`)
/// or by its waited-for children (`RUSAGE_CHILDREN`).
fn rusage_cpu(who: libc::c_int) -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn children_cpu() -> f64 {
    rusage_cpu(libc::RUSAGE_CHILDREN)
}

/// CPU seconds this process has used so far.
pub fn self_cpu() -> f64 {
    rusage_cpu(libc::RUSAGE_SELF)
}

/// CPU ticks (user + sys) of every PostgreSQL process serving a TCP client.
fn server_ticks() -> HashMap<u32, u64> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if !cmd.starts_with(b"postgres: ") || !cmd.windows(10).any(|w| w == b"127.0.0.1(") {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After the command: state is field 3; utime and stime are 14 and 15.
        if let (Some(u), Some(s)) = (
            f.get(11).and_then(|v| v.parse::<u64>().ok()),
            f.get(12).and_then(|v| v.parse::<u64>().ok()),
        ) {
            out.insert(pid, u + s);
        }
    }
    out
}

/// CPU ticks per thread (tid -> (name, ticks)) of process `pid`.
pub fn thread_ticks(pid: u32, out: &mut HashMap<u32, (String, u64)>) {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for e in dir.flatten() {
        let Ok(tid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat.get(open + 1..close).unwrap_or("?").to_string();
        let f: Vec<&str> = stat.get(close + 1..).unwrap_or("").split_whitespace().collect();
        if let (Some(u), Some(s)) = (
            f.get(11).and_then(|v| v.parse::<u64>().ok()),
            f.get(12).and_then(|v| v.parse::<u64>().ok()),
        ) {
            out.insert(tid, (name, u + s));
        }
    }
}

/// Ticks per thread summed by thread name, in seconds, busiest first.
pub fn seconds_by_name(ticks: impl IntoIterator<Item = (String, u64)>) -> Vec<(String, f64)> {
    let hz = clk_tck();
    let mut by_name: Vec<(String, f64)> = Vec::new();
    for (name, t) in ticks {
        match by_name.iter_mut().find(|(n, _)| *n == name) {
            Some(e) => e.1 += t as f64 / hz,
            None => by_name.push((name, t as f64 / hz)),
        }
    }
    by_name.sort_by(|a, b| b.1.total_cmp(&a.1));
    by_name
}

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64
}

/// Samples, every 50 ms until stopped, the CPU of the server processes
/// serving TCP clients and of each thread of the client process.
pub struct Sampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    client: Arc<std::sync::atomic::AtomicU32>,
    handle: std::thread::JoinHandle<(f64, Vec<(String, f64)>)>,
}

impl Sampler {
    pub fn start() -> Sampler {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let client = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let before = server_ticks();
        let (flag, pid) = (Arc::clone(&stop), Arc::clone(&client));
        let handle = std::thread::spawn(move || {
            let mut last = before.clone();
            let mut threads = HashMap::new();
            loop {
                let done = flag.load(std::sync::atomic::Ordering::Relaxed);
                for (pid, t) in server_ticks() {
                    last.insert(pid, t);
                }
                let p = pid.load(std::sync::atomic::Ordering::Relaxed);
                if p != 0 {
                    thread_ticks(p, &mut threads);
                }
                if done {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let hz = clk_tck();
            let server = last
                .iter()
                .map(|(pid, t)| t - before.get(pid).copied().unwrap_or(0))
                .sum::<u64>() as f64
                / hz;
            (server, seconds_by_name(threads.into_values()))
        });
        Sampler { stop, client, handle }
    }

    pub fn finish(self) -> (f64, Vec<(String, f64)>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().unwrap_or((f64::NAN, Vec::new()))
    }
}

/// Runs `cmd` with stdout discarded and stderr into `log`.
pub fn timed(cmd: &mut Command, log: &Path) -> Result<Run> {
    let err = File::create(log)?;
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(err);
    let sampler = Sampler::start();
    let cpu0 = children_cpu();
    let t = Instant::now();
    let child = cmd.spawn().with_context(|| format!("running {cmd:?}"))?;
    sampler.client.store(child.id(), std::sync::atomic::Ordering::Relaxed);
    let (status, peak_rss) = wait_with_peak(&child)?;
    let wall = t.elapsed().as_secs_f64();
    let cpu = children_cpu() - cpu0;
    let (server, threads) = sampler.finish();
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        bail!("{cmd:?} failed ({status}); stderr:\n{text}");
    }
    Ok(Run {
        wall,
        cpu,
        server,
        threads,
        peak_rss,
    })
}

/// "name 1.2 s, other 0.3 s" for the threads that used at least 0.05 s.
pub fn thread_line(r: &Run) -> String {
    r.threads
        .iter()
        .filter(|(_, s)| *s >= 0.05)
        .map(|(n, s)| format!("{n} {s:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `cmd` and returns (bytes on stdout, lines on stdout).
pub fn count_stdout(cmd: &mut Command) -> Result<(u64, u64)> {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).spawn()?;
    let mut out = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let (mut bytes, mut lines) = (0u64, 0u64);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = out.read(&mut buf)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok((bytes, lines))
}
