//! The `node` collector: CPU, memory, load, disk per real filesystem and network per interface,
//! read from `/proc` (`stat`, `meminfo`, `loadavg`, `net/dev`, `mounts`) and `statvfs(2)`.
//!
//! Owns only the host's own counters. Reading them touches `/proc` and calls `statvfs`, which
//! can block on a dead network mount, so the work runs on a blocking thread; if the previous
//! read is still stuck there, this round fails fast instead of piling up threads. The five
//! `/proc` files are opened once and read again from their start at each collection: opening
//! them, and the nine `/sys/class/net` files per interface `sysinfo` read, anew every second
//! was a tenth of the sentinel's CPU at one collection a second. The figures are `sysinfo`'s
//! (0.40), which this reader replaced: the same fields, the same arithmetic, the same
//! filesystems left out. Also owns [`FilesystemStat::of`], the space and inodes of the
//! filesystem holding one path (the IPFS repo's, for the `ipfs` collector).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;

use super::{CollectError, Collector};
use crate::model::Family;

/// Filesystems that hold no user data (pseudo, in-memory and layered filesystems), and network
/// filesystems, whose `statvfs` can hang on a dead server.
const IGNORED_FS_TYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "cifs",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "fuse.lxcfs",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nfs",
    "nfs4",
    "nsfs",
    "overlay",
    "proc",
    "procfs",
    "pstore",
    "ramfs",
    "rootfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

/// Mount points under which nothing is the host's own storage (`/run` but for `/run/media`,
/// where removable media are mounted).
const IGNORED_MOUNT_PREFIXES: &[&str] = &[
    "/dev",
    "/proc",
    "/sys",
    "/run",
    "/var/lib/docker/",
    "/var/lib/containers/",
    "/snap/",
];

/// How long the first collection waits between its two reads of the CPU counters, since usage
/// is a difference between two reads (`sysinfo`'s `MINIMUM_CPU_UPDATE_INTERVAL` on Linux).
const CPU_PRIMING: Duration = Duration::from_millis(200);

/// Reads the host's CPU, memory, load, disks and network interfaces.
pub struct NodeCollector {
    state: Arc<Mutex<NodeState>>,
}

/// A `/proc` file kept open and read again from its start (`pread` at offset 0, which makes
/// the kernel write it afresh) into a buffer kept too.
struct ProcFile {
    path: &'static str,
    file: File,
    buf: Vec<u8>,
}

impl ProcFile {
    fn open(path: &'static str) -> Result<ProcFile, CollectError> {
        Ok(ProcFile {
            path,
            file: File::open(path)
                .map_err(|e| CollectError::Source(format!("cannot read this host: {path}: {e}")))?,
            buf: vec![0; 4096],
        })
    }

    /// The whole file as it is now.
    fn read(&mut self) -> Result<Cow<'_, str>, CollectError> {
        let mut len = 0;
        loop {
            if len == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = self
                .file
                .read_at(&mut self.buf[len..], len as u64)
                .map_err(|e| CollectError::Source(format!("cannot read {}: {e}", self.path)))?;
            if n == 0 {
                break;
            }
            len += n;
        }
        Ok(String::from_utf8_lossy(&self.buf[..len]))
    }
}

/// The `/proc` files read at each collection.
struct ProcFiles {
    stat: ProcFile,
    meminfo: ProcFile,
    loadavg: ProcFile,
    net_dev: ProcFile,
    mounts: ProcFile,
}

impl ProcFiles {
    fn open() -> Result<ProcFiles, CollectError> {
        Ok(ProcFiles {
            stat: ProcFile::open("/proc/stat")?,
            meminfo: ProcFile::open("/proc/meminfo")?,
            loadavg: ProcFile::open("/proc/loadavg")?,
            net_dev: ProcFile::open("/proc/net/dev")?,
            mounts: ProcFile::open("/proc/mounts")?,
        })
    }

    fn cpu_times(&mut self) -> Result<CpuTimes, CollectError> {
        let text = self.stat.read()?;
        CpuTimes::parse(&text)
            .ok_or_else(|| CollectError::Source("/proc/stat: no `cpu` line".into()))
    }
}

struct NodeState {
    /// Opened by the first collection; until they can be (a host without `/proc`), each
    /// collection fails with the reason and the other collectors carry on.
    files: Option<ProcFiles>,
    /// The CPU counters of the previous read.
    cpu: Option<CpuTimes>,
}

impl NodeCollector {
    /// A collector with nothing read yet; CPU usage is measured from its first run on.
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(NodeState {
                files: None,
                cpu: None,
            })),
        }
    }
}

impl Default for NodeCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl Collector for NodeCollector {
    fn name(&self) -> &'static str {
        "node"
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Family>, CollectError>> {
        let state = Arc::clone(&self.state);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut state = state.try_lock().map_err(|_| {
                    CollectError::Source("the previous read of the host is still blocked".into())
                })?;
                state.read()
            })
            .await
            .map_err(|e| CollectError::Source(format!("node reader stopped: {e}")))?
        })
    }
}

impl NodeState {
    fn read(&mut self) -> Result<Vec<Family>, CollectError> {
        let files = match &mut self.files {
            Some(files) => files,
            None => self.files.insert(ProcFiles::open()?),
        };
        let previous = match self.cpu {
            Some(previous) => previous,
            None => {
                let first = files.cpu_times()?;
                std::thread::sleep(CPU_PRIMING);
                first
            }
        };
        let now = files.cpu_times()?;
        self.cpu = Some(now);
        let memory = Memory::parse(&files.meminfo.read()?)
            .ok_or_else(|| CollectError::Source("/proc/meminfo: no `MemTotal`".into()))?;

        let mut families = vec![
            Family::single_gauge(
                "ipfs_sentinel_node_cpu_usage_ratio",
                "Share of CPU time busy across all cores since the previous collection (0-1).",
                now.busy_ratio_since(&previous),
            ),
            Family::single_gauge(
                "ipfs_sentinel_node_memory_total_bytes",
                "Physical memory installed.",
                memory.total_bytes as f64,
            ),
            Family::single_gauge(
                "ipfs_sentinel_node_memory_usage_ratio",
                "Share of physical memory in use, i.e. not available to new programs (0-1).",
                ratio(
                    memory.total_bytes.saturating_sub(memory.available_bytes),
                    memory.total_bytes,
                ),
            ),
        ];
        let load1 = files
            .loadavg
            .read()
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse::<f64>().ok());
        if let Some(load1) = load1 {
            families.push(Family::single_gauge(
                "ipfs_sentinel_node_load1",
                "1-minute load average.",
                load1,
            ));
        }
        families.extend(disk_families(&mounted_filesystems(&files.mounts.read()?)));
        families.extend(network_families(&interface_bytes(&files.net_dev.read()?)));
        Ok(families)
    }
}

/// The host's CPU time, all cores, from the `cpu` line of `/proc/stat` (in clock ticks).
#[derive(Debug, Clone, Copy, PartialEq)]
struct CpuTimes {
    /// user, nice (guest time included), system, irq, softirq and steal.
    busy: u64,
    /// busy, idle and iowait.
    total: u64,
}

impl CpuTimes {
    fn parse(stat: &str) -> Option<CpuTimes> {
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let mut fields = line
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse::<u64>().unwrap_or(0));
        let mut next = || fields.next().unwrap_or(0);
        let (user, nice, system, idle, iowait, irq, softirq, steal) = (
            next(),
            next(),
            next(),
            next(),
            next(),
            next(),
            next(),
            next(),
        );
        let busy = [user, nice, system, irq, softirq, steal]
            .into_iter()
            .fold(0u64, u64::saturating_add);
        Some(CpuTimes {
            busy,
            total: busy.saturating_add(idle).saturating_add(iowait),
        })
    }

    /// Share of the time since `before` the CPUs were busy (0-1); 0 when no time passed.
    fn busy_ratio_since(&self, before: &CpuTimes) -> f64 {
        let total = self.total.saturating_sub(before.total);
        if total == 0 {
            return 0.0;
        }
        (self.busy.saturating_sub(before.busy) as f64 / total as f64).min(1.0)
    }
}

/// Physical memory from `/proc/meminfo`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Memory {
    total_bytes: u64,
    /// `MemAvailable`, or on kernels before 3.14 the estimate free + buffers + cached +
    /// reclaimable slab - shared memory.
    available_bytes: u64,
}

impl Memory {
    fn parse(meminfo: &str) -> Option<Memory> {
        let mut fields: BTreeMap<&str, u64> = BTreeMap::new();
        for line in meminfo.lines() {
            if let Some((key, rest)) = line.split_once(':') {
                if let Some(kib) = rest.split_whitespace().next().and_then(|v| v.parse().ok()) {
                    // /proc/meminfo says kB and means KiB.
                    fields.insert(key, u64::saturating_mul(kib, 1024));
                }
            }
        }
        let get = |key: &str| fields.get(key).copied().unwrap_or(0);
        let available_bytes = fields.get("MemAvailable").copied().unwrap_or_else(|| {
            get("MemFree")
                .saturating_add(get("Buffers"))
                .saturating_add(get("Cached"))
                .saturating_add(get("SReclaimable"))
                .saturating_sub(get("Shmem"))
        });
        Some(Memory {
            total_bytes: *fields.get("MemTotal")?,
            available_bytes,
        })
    }
}

/// The mount points of `/proc/mounts` worth reporting, in its order; a mount point listed
/// twice is kept once.
fn mounted_filesystems(mounts: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(device), Some(mount_point), Some(fs_type)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        // The kernel escapes these four in mount points.
        let mount_point = mount_point
            .replace("\\134", "\\")
            .replace("\\040", " ")
            .replace("\\011", "\t")
            .replace("\\012", "\n");
        if !device.starts_with("sunrpc")
            && is_real_filesystem(fs_type, &mount_point)
            && !found.contains(&mount_point)
        {
            found.push(mount_point);
        }
    }
    found
}

/// Bytes received and transmitted per interface, from `/proc/net/dev`.
fn interface_bytes(net_dev: &str) -> Vec<(String, u64, u64)> {
    net_dev
        .lines()
        .filter_map(|line| {
            let (name, counters) = line.split_once(':')?;
            let counters: Vec<u64> = counters
                .split_whitespace()
                .map(|c| c.parse().unwrap_or(0))
                .collect();
            Some((
                name.trim().to_owned(),
                *counters.first()?,
                *counters.get(8)?,
            ))
        })
        .collect()
}

/// Space and inodes of one filesystem, from `statvfs(2)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FilesystemStat {
    /// Size in bytes.
    pub size_bytes: f64,
    /// Bytes available to unprivileged users.
    pub available_bytes: f64,
    /// Inodes in all; 0 on filesystems that allocate them as needed (btrfs).
    pub inodes: f64,
    /// Inodes free.
    pub inodes_free: f64,
}

impl FilesystemStat {
    /// The filesystem holding `path`. Blocks while the filesystem does (a dead network mount):
    /// call it from a blocking thread.
    pub fn of(path: &std::path::Path) -> Result<Self, CollectError> {
        let st = nix::sys::statvfs::statvfs(path).map_err(|e| {
            CollectError::Source(format!(
                "cannot read the filesystem of {}: {e}",
                path.display()
            ))
        })?;
        let unit = st.fragment_size() as f64;
        Ok(Self {
            size_bytes: st.blocks() as f64 * unit,
            available_bytes: st.blocks_available() as f64 * unit,
            inodes: st.files() as f64,
            inodes_free: st.files_free() as f64,
        })
    }

    /// Share of the space not available to unprivileged users (0-1), as
    /// `ipfs_sentinel_node_disk_usage_ratio` counts it; `None` for a filesystem of size 0.
    pub fn usage_ratio(&self) -> Option<f64> {
        (self.size_bytes > 0.0).then(|| 1.0 - self.available_bytes / self.size_bytes)
    }

    /// Share of the inodes in use (0-1); `None` where the filesystem has no fixed count.
    pub fn inodes_usage_ratio(&self) -> Option<f64> {
        (self.inodes > 0.0).then(|| 1.0 - self.inodes_free / self.inodes)
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Whether a mount holds real storage worth reporting.
fn is_real_filesystem(fs_type: &str, mount_point: &str) -> bool {
    let under = |p: &str| {
        let p = p.trim_end_matches('/');
        mount_point == p
            || mount_point
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    !IGNORED_FS_TYPES.contains(&fs_type)
        && !IGNORED_MOUNT_PREFIXES
            .iter()
            .any(|p| under(p) && !(*p == "/run" && under("/run/media")))
}

fn disk_families(mount_points: &[String]) -> Vec<Family> {
    let mut by_mount: BTreeMap<&str, FilesystemStat> = BTreeMap::new();
    for mount in mount_points {
        if let Ok(stat) = FilesystemStat::of(Path::new(mount)) {
            if stat.size_bytes > 0.0 {
                by_mount.insert(mount, stat);
            }
        }
    }
    let mut usage = Family::gauge(
        "ipfs_sentinel_node_disk_usage_ratio",
        "Share of the filesystem's space not available to unprivileged users (0-1).",
    );
    let mut available = Family::gauge(
        "ipfs_sentinel_node_disk_available_bytes",
        "Filesystem space available to unprivileged users.",
    );
    let mut size = Family::gauge("ipfs_sentinel_node_disk_size_bytes", "Filesystem size.");
    for (mount, stat) in &by_mount {
        let labels = [("mountpoint", *mount)];
        usage.push(&labels, stat.usage_ratio().unwrap_or(0.0));
        available.push(&labels, stat.available_bytes);
        size.push(&labels, stat.size_bytes);
    }
    vec![usage, available, size]
}

fn network_families(interfaces: &[(String, u64, u64)]) -> Vec<Family> {
    let mut received = Family::counter(
        "ipfs_sentinel_node_network_received_bytes_total",
        "Bytes received on the interface since boot.",
    );
    let mut transmitted = Family::counter(
        "ipfs_sentinel_node_network_transmitted_bytes_total",
        "Bytes transmitted on the interface since boot.",
    );
    let mut sorted: Vec<&(String, u64, u64)> = interfaces
        .iter()
        .filter(|(name, _, _)| name != "lo")
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, rx, tx) in sorted {
        received.push(&[("interface", name.as_str())], *rx as f64);
        transmitted.push(&[("interface", name.as_str())], *tx as f64);
    }
    vec![received, transmitted]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_and_layered_filesystems_are_left_out() {
        assert!(is_real_filesystem("ext4", "/"));
        assert!(is_real_filesystem("xfs", "/var/lib/ipfs"));
        assert!(!is_real_filesystem("tmpfs", "/run"));
        assert!(!is_real_filesystem("overlay", "/"));
        assert!(!is_real_filesystem(
            "ext4",
            "/var/lib/docker/overlay2/x/merged"
        ));
        assert!(!is_real_filesystem("vfat", "/dev"));
        assert!(
            is_real_filesystem("ext4", "/device-data"),
            "prefix match is by path segment"
        );
        assert!(!is_real_filesystem("ext4", "/run/user/1000"));
        assert!(is_real_filesystem("vfat", "/run/media/me/STICK"));
        assert!(
            !is_real_filesystem("nfs4", "/mnt/shared"),
            "statvfs may hang"
        );
        assert!(!is_real_filesystem("rootfs", "/"));
    }

    #[test]
    fn mounts_are_unescaped_listed_once_and_filtered() {
        let mounts = "proc /proc proc rw 0 0\n\
                      /dev/vda / ext4 rw 0 0\n\
                      /dev/vdb /srv/ipfs\\040data xfs rw 0 0\n\
                      tmpfs /dev/shm tmpfs rw 0 0\n\
                      sunrpc /var/lib/nfs/rpc_pipefs ext4 rw 0 0\n\
                      /dev/vda / ext4 rw 0 0\n";
        assert_eq!(mounted_filesystems(mounts), vec!["/", "/srv/ipfs data"]);
    }

    #[test]
    fn cpu_usage_is_busy_time_over_all_time_between_two_reads() {
        // user nice system idle iowait irq softirq steal guest guest_nice
        let before = CpuTimes::parse("cpu  100 10 50 800 20 5 5 10 40 0\ncpu0 1 2 3\n").unwrap();
        let after = CpuTimes::parse("cpu  160 10 70 1000 40 5 5 10 70 0\n").unwrap();
        // Busy: user (guest within it) + nice + system + irq + softirq + steal; idle and
        // iowait count only in the total.
        assert_eq!(
            before,
            CpuTimes {
                busy: 180,
                total: 1000
            }
        );
        assert_eq!(after.busy_ratio_since(&before), 80.0 / 300.0);
        assert_eq!(after.busy_ratio_since(&after), 0.0, "no time passed");
        assert_eq!(CpuTimes::parse("intr 1 2\n"), None);
    }

    #[test]
    fn available_memory_and_its_estimate_on_old_kernels() {
        let now = "MemTotal:       1000 kB\nMemFree:  100 kB\nMemAvailable:   600 kB\n";
        assert_eq!(
            Memory::parse(now),
            Some(Memory {
                total_bytes: 1_024_000,
                available_bytes: 614_400
            })
        );
        let old = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 300 kB\n\
                   SReclaimable: 20 kB\nShmem: 70 kB\n";
        assert_eq!(Memory::parse(old).unwrap().available_bytes, 400 * 1024);
        assert_eq!(Memory::parse("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn interface_counters_from_proc_net_dev_match_sysfs() {
        let sample = "Inter-|   Receive |  Transmit\n face |bytes packets|bytes\n\
                      \x20 eth0: 1234 5 0 0 0 0 0 0 5678 6 0 0 0 0 0 0\n";
        assert_eq!(
            interface_bytes(sample),
            vec![("eth0".to_owned(), 1234, 5678)]
        );
        // This host: the counters sysinfo read from /sys/class/net, one interface at a time.
        let here = interface_bytes(&std::fs::read_to_string("/proc/net/dev").unwrap());
        assert!(!here.is_empty());
        for (name, rx, _) in &here {
            let sysfs: u64 =
                std::fs::read_to_string(format!("/sys/class/net/{name}/statistics/rx_bytes"))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
            assert!(
                sysfs >= *rx && sysfs - rx < 100_000_000,
                "{name}: {rx} then {sysfs}"
            );
        }
    }

    #[test]
    fn the_filesystem_of_a_path_against_df() {
        let fs = FilesystemStat::of(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        let df = std::process::Command::new("df")
            .args([
                "--output=size,avail,itotal",
                "-B1",
                env!("CARGO_MANIFEST_DIR"),
            ])
            .output()
            .unwrap();
        let text = String::from_utf8(df.stdout).unwrap();
        let figures: Vec<f64> = text
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .map(|f| f.parse().unwrap())
            .collect();
        assert_eq!(fs.size_bytes, figures[0], "df: {text}");
        assert!((fs.available_bytes - figures[1]).abs() < 1e9, "df: {text}");
        assert_eq!(fs.inodes, figures[2], "df: {text}");
        let used = fs.usage_ratio().unwrap();
        assert!(used > 0.0 && used < 1.0, "{used}");
        let none = FilesystemStat {
            size_bytes: 0.0,
            available_bytes: 0.0,
            inodes: 0.0,
            inodes_free: 0.0,
        };
        assert_eq!(
            (none.usage_ratio(), none.inodes_usage_ratio()),
            (None, None)
        );
        let e = FilesystemStat::of(std::path::Path::new("/no/such/repo")).unwrap_err();
        assert!(e.to_string().contains("/no/such/repo"), "{e}");
    }

    #[tokio::test]
    async fn reads_this_host() {
        let mut node = NodeCollector::new();
        node.collect().await.expect("the host is readable");
        // A second read re-reads the files kept open, from their start.
        let families = node.collect().await.expect("the host is readable again");
        let get = |n: &str| families.iter().find(|f| f.name == n).expect(n);
        let memory = get("ipfs_sentinel_node_memory_usage_ratio").samples[0].value;
        assert!(memory > 0.0 && memory < 1.0, "memory ratio {memory}");
        assert!(get("ipfs_sentinel_node_memory_total_bytes").samples[0].value > 1e6);
        let cpu = get("ipfs_sentinel_node_cpu_usage_ratio").samples[0].value;
        assert!((0.0..=1.0).contains(&cpu), "cpu ratio {cpu}");
        let nets = get("ipfs_sentinel_node_network_received_bytes_total");
        assert!(nets.samples.iter().all(|s| s.labels[0].1 != "lo"));
        assert!(get("ipfs_sentinel_node_load1").samples[0].value >= 0.0);
        for disk in &get("ipfs_sentinel_node_disk_size_bytes").samples {
            let mount = &disk.labels[0].1;
            let fs = FilesystemStat::of(Path::new(mount)).unwrap();
            assert_eq!(disk.value, fs.size_bytes, "{mount}");
        }
    }
}
