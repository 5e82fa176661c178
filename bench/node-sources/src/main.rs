//! Measures the two candidate sources of the `node` collector side by side, in one run:
//! `sysinfo` (what ipfs-sentinel used until issue 19) and `procfs` + `statvfs`, each reading the same things
//! (CPU busy ratio, memory, load, real filesystems, per-interface byte counters).
//!
//! Usage (figures and their reading in BENCHMARKS.md):
//!   cargo build --release --manifest-path bench/node-sources/Cargo.toml
//!   bench/node-sources/target/release/nodebench bench 2000 5   # interleaved, per-call medians
//!   bench/node-sources/target/release/nodebench parts 2000     # per metric
//!   bench/node-sources/target/release/nodebench paced 300      # calls 210 ms apart
use std::hint::black_box;
use std::time::{Duration, Instant};

#[derive(Debug, Default, Clone)]
#[allow(dead_code)]
pub struct Metrics {
    cpu_busy: f64, // 0..1
    mem_total: u64,
    mem_avail: u64,
    load1: f64,
    disks: Vec<(String, u64, u64)>, // mount, total, avail
    nets: Vec<(String, u64, u64)>,  // iface, rx, tx
}

// Same skip list in both variants: sysinfo's built-in filter + overlay (sysinfo does not skip overlay).
#[allow(dead_code)]
fn skip_fs(spec: &str, mnt: &str, ty: &str) -> bool {
    matches!(
        ty,
        "rootfs" | "sysfs" | "proc" | "devtmpfs" | "cgroup" | "cgroup2" | "pstore" | "squashfs"
            | "rpc_pipefs" | "iso9660" | "devpts" | "hugetlbfs" | "mqueue" | "tmpfs" | "cifs"
            | "nfs" | "nfs4" | "autofs" | "overlay"
    ) || mnt.starts_with("/sys")
        || mnt.starts_with("/proc")
        || (mnt.starts_with("/run") && !mnt.starts_with("/run/media"))
        || spec.starts_with("sunrpc")
}

#[cfg(feature = "use_sysinfo")]
pub struct SysinfoReader {
    sys: sysinfo::System,
    nets: sysinfo::Networks,
}

#[cfg(feature = "use_sysinfo")]
impl SysinfoReader {
    pub fn new() -> Self {
        use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind};
        let sys = sysinfo::System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing().with_usage())
                .with_memory(MemoryRefreshKind::nothing().with_ram()),
        )
        .expect("System");
        let nets = sysinfo::Networks::new_with_refreshed_list().expect("Networks");
        Self { sys, nets }
    }
    pub fn cpu(&mut self) -> f64 {
        self.sys.refresh_cpu_usage();
        self.sys.global_cpu_usage() as f64 / 100.0
    }
    pub fn mem(&mut self) -> (u64, u64) {
        self.sys.refresh_memory();
        (self.sys.total_memory(), self.sys.available_memory())
    }
    pub fn load(&mut self) -> f64 {
        sysinfo::System::load_average().map(|l| l.one).unwrap_or(0.0)
    }
    pub fn disks(&mut self) -> Vec<(String, u64, u64)> {
        use sysinfo::{DiskRefreshKind, Disks};
        let disks =
            Disks::new_with_refreshed_list_specifics(DiskRefreshKind::nothing().with_storage())
                .expect("Disks");
        disks
            .iter()
            .filter(|d| d.file_system() != "overlay" && d.total_space() != 0)
            .map(|d| {
                (d.mount_point().to_string_lossy().into_owned(), d.total_space(), d.available_space())
            })
            .collect()
    }
    pub fn nets(&mut self) -> Vec<(String, u64, u64)> {
        self.nets.refresh(true);
        let mut v: Vec<_> = self
            .nets
            .iter()
            .filter(|(n, _)| n.as_os_str() != "lo")
            .map(|(n, d)| (n.to_string_lossy().into_owned(), d.total_received(), d.total_transmitted()))
            .collect();
        v.sort();
        v
    }
    pub fn read(&mut self) -> Metrics {
        let cpu_busy = self.cpu();
        let (mem_total, mem_avail) = self.mem();
        Metrics { cpu_busy, mem_total, mem_avail, load1: self.load(), disks: self.disks(), nets: self.nets() }
    }
}

#[cfg(feature = "use_procfs")]
pub struct ProcfsReader {
    prev: Option<(u64, u64)>, // (total, idle) ticks
}

#[cfg(feature = "use_procfs")]
impl ProcfsReader {
    pub fn new() -> Self {
        let mut r = Self { prev: None };
        r.cpu();
        r
    }
    pub fn cpu(&mut self) -> f64 {
        use procfs::CurrentSI;
        let ks = procfs::KernelStats::current().expect("stat");
        let t = &ks.total;
        let idle = t.idle + t.iowait.unwrap_or(0);
        let total = t.user + t.nice + t.system + idle
            + t.irq.unwrap_or(0) + t.softirq.unwrap_or(0) + t.steal.unwrap_or(0);
        let r = match self.prev {
            Some((pt, pi)) if total > pt => 1.0 - (idle - pi) as f64 / (total - pt) as f64,
            _ => 0.0,
        };
        self.prev = Some((total, idle));
        r
    }
    pub fn mem(&mut self) -> (u64, u64) {
        use procfs::Current;
        let m = procfs::Meminfo::current().expect("meminfo");
        (m.mem_total, m.mem_available.unwrap_or(m.mem_free))
    }
    pub fn load(&mut self) -> f64 {
        use procfs::Current;
        procfs::LoadAverage::current().map(|l| l.one as f64).unwrap_or(0.0)
    }
    pub fn disks(&mut self) -> Vec<(String, u64, u64)> {
        let mut out = Vec::new();
        for m in procfs::mounts().expect("mounts") {
            if skip_fs(&m.fs_spec, &m.fs_file, &m.fs_vfstype) {
                continue;
            }
            let Ok(c) = std::ffi::CString::new(m.fs_file.as_bytes()) else { continue };
            let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
            if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
                continue;
            }
            let st = unsafe { st.assume_init() };
            let fr = st.f_frsize as u64;
            let total = fr.saturating_mul(st.f_blocks as u64);
            if total == 0 {
                continue;
            }
            out.push((m.fs_file, total, fr.saturating_mul(st.f_bavail as u64)));
        }
        out
    }
    pub fn nets(&mut self) -> Vec<(String, u64, u64)> {
        let mut v: Vec<_> = procfs::net::dev_status()
            .expect("net/dev")
            .into_values()
            .filter(|d| d.name != "lo")
            .map(|d| (d.name, d.recv_bytes, d.sent_bytes))
            .collect();
        v.sort();
        v
    }
    pub fn read(&mut self) -> Metrics {
        let cpu_busy = self.cpu();
        let (mem_total, mem_avail) = self.mem();
        Metrics { cpu_busy, mem_total, mem_avail, load1: self.load(), disks: self.disks(), nets: self.nets() }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Times n calls individually, returns per-call durations in microseconds.
fn time_calls<F: FnMut()>(n: usize, mut f: F) -> Vec<f64> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f();
        v.push(t.elapsed().as_nanos() as f64 / 1000.0);
    }
    v
}

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("")
        .to_string()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("bench");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2000);
    match mode {
        #[cfg(feature = "use_sysinfo")]
        "only-sysinfo" => {
            let mut r = SysinfoReader::new();
            for _ in 0..n {
                black_box(r.read());
            }
            println!("{:?}\nsysinfo only: {}", r.read(), vm_hwm());
        }
        #[cfg(feature = "use_procfs")]
        "only-procfs" => {
            let mut r = ProcfsReader::new();
            for _ in 0..n {
                black_box(r.read());
            }
            println!("{:?}\nprocfs only: {}", r.read(), vm_hwm());
        }
        #[cfg(all(feature = "use_sysinfo", feature = "use_procfs"))]
        "bench" => {
            let rounds: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
            let mut s = SysinfoReader::new();
            let mut p = ProcfsReader::new();
            // warm-up
            for _ in 0..200 {
                black_box(s.read());
                black_box(p.read());
            }
            let (mut all_s, mut all_p, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..rounds {
                let mut a = time_calls(n, || {
                    black_box(s.read());
                });
                let mut b = time_calls(n, || {
                    black_box(p.read());
                });
                let (ma, mb) = (median(&mut a), median(&mut b));
                println!("round {round}: sysinfo median {ma:.1} us, procfs median {mb:.1} us, ratio sysinfo/procfs {:.2}", ma / mb);
                ratios.push(ma / mb);
                all_s.extend(a);
                all_p.extend(b);
            }
            let (ms, mp) = (median(&mut all_s), median(&mut all_p));
            println!(
                "ALL ({} calls each): sysinfo median {ms:.1} us, procfs median {mp:.1} us, ratio {:.2}; per-round ratio median {:.2} range {:.2}-{:.2}",
                all_s.len(), ms / mp, median(&mut ratios.clone()),
                ratios.iter().cloned().fold(f64::MAX, f64::min), ratios.iter().cloned().fold(0.0, f64::max)
            );
            println!("sysinfo sample: {:?}", s.read());
            println!("procfs  sample: {:?}", p.read());
        }
        #[cfg(all(feature = "use_sysinfo", feature = "use_procfs"))]
        "parts" => {
            // Per-component medians, tight loop, interleaved A/B per component, 5 rounds pooled.
            let mut s = SysinfoReader::new();
            let mut p = ProcfsReader::new();
            macro_rules! part {
                ($name:expr, $a:expr, $b:expr) => {{
                    let (mut va, mut vb) = (Vec::new(), Vec::new());
                    for _ in 0..5 {
                        va.extend(time_calls(n, || { black_box($a); }));
                        vb.extend(time_calls(n, || { black_box($b); }));
                    }
                    let (ma, mb) = (median(&mut va), median(&mut vb));
                    println!("{:6}: sysinfo {ma:7.1} us  procfs {mb:7.1} us  ratio {:.2}", $name, ma / mb);
                }};
            }
            part!("cpu", s.cpu(), p.cpu());
            part!("mem", s.mem(), p.mem());
            part!("load", s.load(), p.load());
            part!("disks", s.disks(), p.disks());
            part!("nets", s.nets(), p.nets());
        }
        #[cfg(all(feature = "use_sysinfo", feature = "use_procfs"))]
        "paced-cpu" => {
            // sysinfo skips re-reading /proc/stat if <200 ms since last refresh; pace calls
            // 210 ms apart so every sysinfo refresh_cpu_usage really reads /proc/stat.
            let mut s = SysinfoReader::new();
            let mut p = ProcfsReader::new();
            let (mut va, mut vb) = (Vec::new(), Vec::new());
            for _ in 0..n {
                std::thread::sleep(Duration::from_millis(210));
                let t = Instant::now();
                black_box(s.cpu());
                va.push(t.elapsed().as_nanos() as f64 / 1000.0);
                let t = Instant::now();
                black_box(p.cpu());
                vb.push(t.elapsed().as_nanos() as f64 / 1000.0);
            }
            let (ma, mb) = (median(&mut va), median(&mut vb));
            println!("paced cpu ({n} samples): sysinfo {ma:.1} us  procfs {mb:.1} us  ratio {:.2}", ma / mb);
            let _ = s.read();
        }
        #[cfg(all(feature = "use_sysinfo", feature = "use_procfs"))]
        "paced" => {
            // Full read, calls 210 ms apart (like a real agent), alternating order each sample.
            let mut s = SysinfoReader::new();
            let mut p = ProcfsReader::new();
            let (mut va, mut vb) = (Vec::new(), Vec::new());
            for i in 0..n {
                std::thread::sleep(Duration::from_millis(210));
                for k in 0..2 {
                    let t = Instant::now();
                    if (i + k) % 2 == 0 { black_box(s.read()); } else { black_box(p.read()); }
                    let d = t.elapsed().as_nanos() as f64 / 1000.0;
                    if (i + k) % 2 == 0 { va.push(d) } else { vb.push(d) }
                }
            }
            let (ma, mb) = (median(&mut va), median(&mut vb));
            println!("paced full read ({n} samples): sysinfo {ma:.1} us  procfs {mb:.1} us  ratio {:.2}", ma / mb);
            println!("sysinfo sample: {:?}", s.read());
            println!("procfs  sample: {:?}", p.read());
        }
        _ => eprintln!("unknown mode {mode}"),
    }
}
