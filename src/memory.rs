//! How the process holds its memory: the allocator's free pages handed back
//! after each refresh stage, and the compiled zone moved onto 2 MiB pages.
//!
//! Why 2 MiB pages: an answer reads a few scattered spots of the zone (the
//! name index, the name, the record bytes), each one most often a TLB miss
//! at 20,000 q/s, since dnsperf and the kernel run in between. On 4 KiB
//! pages each of those misses walks the page tables, which costs far more
//! under virtualisation (on our build machine, a microVM, moving the zone
//! saves ~5 % of the server's CPU per UDP query; README "Performance").
//! The zone is read-only once compiled, so it is moved once, after it is
//! published.

use std::collections::BTreeMap;
use std::io;
use std::mem::size_of_val;

/// Return the allocator's free pages to the operating system (mimalloc
/// keeps them for a while otherwise; after a refresh, most of what the
/// fetch, parse and old records used is free).
pub fn release_free_memory() {
    // SAFETY: `mi_collect` only walks the allocator's own free lists; it is
    // safe to call from any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// A 2 MiB page (x86-64 and aarch64 with 4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;

/// The memory of `slice`, as a region for [`collapse_to_huge_pages`].
pub fn region_of<T>(slice: &[T]) -> Region {
    Region { start: slice.as_ptr() as usize, len: size_of_val(slice) }
}

/// A range of the process's memory, by address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub(crate) start: usize,
    pub(crate) len: usize,
}

/// What [`collapse_to_huge_pages`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Collapsed {
    /// 2 MiB pages now backing the regions.
    pub pages: usize,
    /// 2 MiB pages the kernel did not make (no free 2 MiB page, or a
    /// kernel without `MADV_COLLAPSE`: before Linux 6.1).
    pub refused: usize,
}

/// Ask the kernel to back `regions` with 2 MiB pages now (`MADV_COLLAPSE`),
/// best effort, unless the machine's transparent huge pages are turned off
/// (`never` in `/sys/kernel/mm/transparent_hugepage/enabled`, which
/// `MADV_COLLAPSE` would ignore). See [`pages_to_collapse`] for which.
///
/// The kernel copies each 2 MiB page (~1 ms each here); a thread touching
/// one while it is copied waits for it. Call it off the serving path.
pub fn collapse_to_huge_pages(regions: impl IntoIterator<Item = Region>) -> Collapsed {
    if huge_pages_turned_off() {
        return Collapsed::default();
    }
    let mut done = Collapsed::default();
    for page in pages_to_collapse(regions) {
        match collapse(page) {
            Ok(()) => done.pages += 1,
            Err(e) => {
                tracing::debug!("MADV_COLLAPSE at {page:#x}: {e}");
                done.refused += 1;
            }
        }
    }
    done
}

/// The 2 MiB pages (their addresses, ascending) at least half of which
/// `regions` cover. The rest of such a page moves with it (the contents
/// of memory never change, only the pages behind it) and becomes resident
/// if it was not: so a region's ends on pages it covers less are left on
/// small pages, and each region costs at most 1 MiB more resident memory.
fn pages_to_collapse(regions: impl IntoIterator<Item = Region>) -> Vec<usize> {
    let mut covered: BTreeMap<usize, usize> = BTreeMap::new();
    for Region { start, len } in regions {
        let end = start.saturating_add(len);
        let mut page = start / HUGE_PAGE * HUGE_PAGE;
        while page < end {
            let next = page.saturating_add(HUGE_PAGE);
            *covered.entry(page).or_default() += end.min(next) - start.max(page);
            page = next;
        }
    }
    covered.into_iter().filter(|&(_, bytes)| bytes >= HUGE_PAGE / 2).map(|(page, _)| page).collect()
}

fn huge_pages_turned_off() -> bool {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|modes| thp_mode_is_never(&modes))
}

/// Whether the selected mode (in brackets, as in `always [madvise] never`)
/// is `never`.
fn thp_mode_is_never(modes: &str) -> bool {
    modes.split_whitespace().any(|mode| mode == "[never]")
}

fn collapse(page: usize) -> io::Result<()> {
    // SAFETY: `MADV_COLLAPSE` never changes the contents of memory, only
    // the pages behind it, so no Rust value can observe it; an address
    // range the process has not mapped is an error (ENOMEM), not a fault.
    let rc = unsafe { libc::madvise(page as *mut libc::c_void, HUGE_PAGE, libc::MADV_COLLAPSE) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The resident 2 MiB pages, in KiB, of the mapping starting at `start`.
    fn anon_huge_kb(start: usize) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&format!("{start:x}-")));
        let line = lines.find(|l| l.starts_with("AnonHugePages:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn collapsing_keeps_the_bytes_and_makes_huge_pages_where_the_kernel_can() {
        // A mapping of its own, so that no other test's memory is in it.
        let len = 8 << 20;
        // SAFETY: a fresh private anonymous mapping, unmapped at the end.
        let map = unsafe {
            let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0)
        };
        assert_ne!(map, libc::MAP_FAILED);
        // SAFETY: the mapping is `len` bytes, readable and writable.
        let bytes = unsafe { std::slice::from_raw_parts_mut(map.cast::<u8>(), len) };
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        // Two 2 MiB pages nearly covered, inside the mapping; the second
        // region overlaps the first, and its page is tried once.
        let first = (map as usize).div_ceil(HUGE_PAGE) * HUGE_PAGE - map as usize;
        let inner = &bytes[first + 100..first + 2 * HUGE_PAGE - 100];
        let done = collapse_to_huge_pages([region_of(inner), region_of(&inner[..10])]);
        let tried = if huge_pages_turned_off() { 0 } else { 2 };
        assert_eq!(done.pages + done.refused, tried, "{done:?}");
        assert!(bytes.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
        // (With transparent huge pages `always`, more may be huge already.)
        assert!(anon_huge_kb(map as usize) >= done.pages as u64 * 2048, "{done:?}");
        // SAFETY: mapped above; `bytes` is not used after this.
        unsafe { libc::munmap(map, len) };
    }

    #[test]
    fn turned_off_only_when_never_is_the_selected_mode() {
        assert!(thp_mode_is_never("always madvise [never]\n"));
        assert!(!thp_mode_is_never("always [madvise] never\n"));
        assert!(!thp_mode_is_never("[always] madvise never\n"));
    }

    #[test]
    fn pages_are_collapsed_where_regions_cover_half_of_them_or_more() {
        const H: usize = HUGE_PAGE;
        let region = |start, len| Region { start, len };
        // Just under half of page 10, all of 11, just over half of 12.
        assert_eq!(pages_to_collapse([region(10 * H + H / 2 + 1, 2 * H)]), [11 * H, 12 * H]);
        assert_eq!(pages_to_collapse([region(10 * H + H / 2, H / 2)]), [10 * H]);
        assert_eq!(pages_to_collapse([region(10 * H + H / 2, H / 4)]), Vec::<usize>::new());
        // Two regions sharing a page add up; an empty one is nothing.
        let shared = [region(H / 4, H / 4), region(H / 2, H / 4), region(5 * H, 0)];
        assert_eq!(pages_to_collapse(shared), [0]);
        assert_eq!(pages_to_collapse([region(usize::MAX - 10, 100)]), Vec::<usize>::new());
    }
}
