//! The test build's global allocator: it counts the bytes each thread holds
//! (allocated minus freed) and their peak, so a test can show that reading a
//! large input keeps little of it ([`peak_held_during`]).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Passes every call to the system allocator and counts the current thread's bytes.
struct CountingAllocator;

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = HELD.try_with(|held| {
        let now = held.get() + delta;
        held.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is passed to the system allocator unchanged; only counters move.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: same layout as given.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: allocated by System with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: as `System.realloc` requires, from the caller.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Runs `f` on this thread and returns its result with the most bytes this
/// thread held at once while it ran, beyond what it held before (what `f`
/// returns included, as it is allocated before `f` ends).
pub(crate) fn peak_held_during<T>(f: impl FnOnce() -> T) -> (T, isize) {
    let held_before = HELD.with(Cell::get);
    PEAK.with(|peak| peak.set(held_before));
    let result = f();
    let peak = PEAK.with(Cell::get) - held_before;
    (result, peak)
}
