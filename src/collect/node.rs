//! The `node` collector: CPU, memory, load, disk per real filesystem and network per interface,
//! read with `sysinfo`.
//!
//! Owns only the host's own counters. Reading them touches `/proc` and calls `statvfs`, which
//! can block on a dead network mount, so the work runs on a blocking thread; if the previous
//! read is still stuck there, this round fails fast instead of piling up threads. Also owns
//! [`FilesystemStat::of`], the space and inodes of the filesystem holding one path (the IPFS
//! repo's, for the `ipfs` collector).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use sysinfo::{
    CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, Networks, RefreshKind, System,
};

use super::{CollectError, Collector};
use crate::model::Family;

/// Filesystem types that hold no user data: pseudo, in-memory and layered filesystems.
const IGNORED_FS_TYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
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
    "nsfs",
    "overlay",
    "proc",
    "procfs",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

/// Mount points under which nothing is the host's own storage.
const IGNORED_MOUNT_PREFIXES: &[&str] = &[
    "/dev",
    "/proc",
    "/sys",
    "/run/credentials/",
    "/var/lib/docker/",
    "/var/lib/containers/",
    "/snap/",
];

/// Reads the host's CPU, memory, load, disks and network interfaces.
pub struct NodeCollector {
    state: Arc<Mutex<NodeState>>,
}

struct NodeState {
    system: System,
    networks: Networks,
    primed: bool,
}

impl NodeCollector {
    /// A collector with nothing read yet; CPU usage is measured from its first run on.
    pub fn new() -> Result<Self, CollectError> {
        let unsupported =
            |e: sysinfo::Error| CollectError::Source(format!("cannot read this host: {e}"));
        let refresh = RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing().with_usage())
            .with_memory(MemoryRefreshKind::nothing().with_ram());
        Ok(Self {
            state: Arc::new(Mutex::new(NodeState {
                system: System::new_with_specifics(refresh).map_err(unsupported)?,
                networks: Networks::new().map_err(unsupported)?,
                primed: false,
            })),
        })
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
        self.system.refresh_cpu_usage();
        if !self.primed {
            // CPU usage is a difference between two reads: take the first one now.
            std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
            self.system.refresh_cpu_usage();
            self.primed = true;
        }
        self.system.refresh_memory();
        self.networks.refresh(true);

        let mut families = vec![
            Family::single_gauge(
                "ipfs_sentinel_node_cpu_usage_ratio",
                "Share of CPU time busy across all cores since the previous collection (0-1).",
                f64::from(self.system.global_cpu_usage()) / 100.0,
            ),
            Family::single_gauge(
                "ipfs_sentinel_node_memory_total_bytes",
                "Physical memory installed.",
                self.system.total_memory() as f64,
            ),
            Family::single_gauge(
                "ipfs_sentinel_node_memory_usage_ratio",
                "Share of physical memory in use, i.e. not available to new programs (0-1).",
                ratio(
                    self.system
                        .total_memory()
                        .saturating_sub(self.system.available_memory()),
                    self.system.total_memory(),
                ),
            ),
        ];
        if let Ok(load) = System::load_average() {
            families.push(Family::single_gauge(
                "ipfs_sentinel_node_load1",
                "1-minute load average.",
                load.one,
            ));
        }
        families.extend(disk_families()?);
        families.extend(network_families(&self.networks));
        Ok(families)
    }
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
    !IGNORED_FS_TYPES.contains(&fs_type)
        && !IGNORED_MOUNT_PREFIXES.iter().any(|p| {
            let p = p.trim_end_matches('/');
            mount_point == p
                || mount_point
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
}

fn disk_families() -> Result<Vec<Family>, CollectError> {
    let disks = Disks::new_with_refreshed_list_specifics(DiskRefreshKind::nothing().with_storage())
        .map_err(|e| CollectError::Source(format!("cannot list filesystems: {e}")))?;
    let mut by_mount: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for disk in &disks {
        let mount = disk.mount_point().to_string_lossy().into_owned();
        let fs = disk.file_system().to_string_lossy();
        if disk.total_space() > 0 && is_real_filesystem(&fs, &mount) {
            by_mount.insert(mount, (disk.total_space(), disk.available_space()));
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
    for (mount, (total, avail)) in &by_mount {
        let labels = [("mountpoint", mount.as_str())];
        usage.push(&labels, 1.0 - ratio(*avail, *total));
        available.push(&labels, *avail as f64);
        size.push(&labels, *total as f64);
    }
    Ok(vec![usage, available, size])
}

fn network_families(networks: &Networks) -> Vec<Family> {
    let mut received = Family::counter(
        "ipfs_sentinel_node_network_received_bytes_total",
        "Bytes received on the interface since boot.",
    );
    let mut transmitted = Family::counter(
        "ipfs_sentinel_node_network_transmitted_bytes_total",
        "Bytes transmitted on the interface since boot.",
    );
    let mut sorted: Vec<_> = networks
        .iter()
        .map(|(name, data)| (name.to_string_lossy(), data))
        .filter(|(name, _)| name != "lo")
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, data) in &sorted {
        let name: &str = name;
        received.push(&[("interface", name)], data.total_received() as f64);
        transmitted.push(&[("interface", name)], data.total_transmitted() as f64);
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
        let mut node = NodeCollector::new().unwrap();
        let families = node.collect().await.expect("the host is readable");
        let get = |n: &str| families.iter().find(|f| f.name == n).expect(n);
        let memory = get("ipfs_sentinel_node_memory_usage_ratio").samples[0].value;
        assert!(memory > 0.0 && memory < 1.0, "memory ratio {memory}");
        assert!(get("ipfs_sentinel_node_memory_total_bytes").samples[0].value > 1e6);
        let cpu = get("ipfs_sentinel_node_cpu_usage_ratio").samples[0].value;
        assert!((0.0..=1.0).contains(&cpu), "cpu ratio {cpu}");
        let nets = get("ipfs_sentinel_node_network_received_bytes_total");
        assert!(nets.samples.iter().all(|s| s.labels[0].1 != "lo"));
    }
}
