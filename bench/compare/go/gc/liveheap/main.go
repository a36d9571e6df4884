// Command liveheap is the Go reference side of gort's long-lived-heap GC benchmark
// (bench/compare/gc.sh; the gort side is bench/compare/gc/liveheap_gort.cpp). It measures
// the collector's stop-the-world pauses and the mutator's slowdown with a large live heap,
// a steady allocation rate and many parked goroutines.
//
//  1. Builds LIVE_MB MiB (default 1024) of live objects: slots of CHAIN (16) linked 64-byte
//     objects each (1 KiB per slot), reached from 1024-slot tables of pointers.
//  2. Parks PARKED (default 100,000) goroutines, each blocked receiving from one channel,
//     so every cycle has that many stacks to scan.
//  3. Collects once (runtime.GC), then, until ALLOC_MB MiB (default 8 x LIVE_MB: about 8
//     cycles at GOGC=100) have been allocated or DURATION seconds (default 300) have
//     passed, one goroutine replaces random slots with freshly built chains, flat out (the
//     old chain becomes garbage, the live heap stays the same size).
//
// Reports, on stdout, "RESULT <name> <value> <unit>" lines: pause_p50, pause_p99,
// pause_max (µs; per cycle of the steady phase, from MemStats.PauseNs, which holds each
// cycle's total stop-the-world time for the last 256 cycles), cycles (completed during the
// steady phase), allocs_per_s (objects allocated per second of the steady phase) and
// heap_mb (HeapAlloc at the end); and a line "PAUSES <us> <us> ..." with every pause of
// the steady phase (gc.sh pools them over its rounds). Run once with GOGC=100 and once with GOGC=off: the ratio
// of allocs_per_s is the mutator slowdown.
//
// What goroutines see, the same probes in the gort version (compare each with GOGC=off):
//   - tick_p50/p99/p999/max (µs): a goroutine sleeps until the next 1 ms tick (absolute
//     deadlines, time.Sleep, so a late tick is not coalesced) through the steady phase;
//     each sample is how late it woke.
//   - gap_max (µs) and gaps_over_1ms: the longest time between two passes of the
//     allocating loop (each pass builds 64 chains, ~1,000 objects) and how many exceeded
//     1 ms: stop-the-world, assists and stack scans all show up here.
//   - cpu_ns_per_alloc: process CPU time (user+sys, getrusage) over the steady phase per
//     object: what the collector's threads cost, which wall time does not show on idle
//     cores.
//
// GOGC=off: nothing is ever freed, so every allocation of the steady phase would touch
// fresh memory and pay a page fault per 4 KiB, which a collected heap (reusing swept
// memory) does not. Unless PREFAULT=0, the program therefore first allocates the steady
// phase's budget once as garbage and collects it explicitly (outside the measurement),
// so the steady phase reuses memory in both modes and the GOGC=off allocations/s is the
// mutator's speed without a collector.
//
// Fairness: the gort version builds the same object graph (same object size, chain length,
// table fan-out, random sequence) and runs the same loop; objects are allocated by one
// goroutine, as there. Go reads the pauses once at the end (ReadMemStats stops the world,
// so it is not polled); the gort version polls gc::stats(), see its header.
package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	fanOut = 1024 // slots per table
	objSz  = 64   // bytes per object
)

type Obj struct {
	next *Obj
	pad  [7]uint64 // 64 bytes in all: Go's 64-byte size class, no slack
}

type Table struct {
	slot [fanOut]*Obj
}

func envInt(name string, def int) int {
	if s := os.Getenv(name); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			fmt.Fprintf(os.Stderr, "bad %s=%q\n", name, s)
			os.Exit(2)
		}
		return v
	}
	return def
}

// newChain builds a chain of n objects; the first carries the slot number (checked at the
// end).
func newChain(n int, slot uint64) *Obj {
	var head *Obj
	for i := 0; i < n; i++ {
		head = &Obj{next: head}
	}
	head.pad[0] = slot
	return head
}

// sink keeps the pre-fault garbage on the heap (see GOGC=off at the top).
var sink *Obj

// xorshift64: the same sequence in the gort version.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s ^= r.s << 13
	r.s ^= r.s >> 7
	r.s ^= r.s << 17
	return r.s
}

func percentile(sorted []uint64, p float64) uint64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.999999999) - 1 // nearest rank
	if i < 0 {
		i = 0
	}
	return sorted[i]
}

// cpuNs: user+sys CPU time of the process so far.
func cpuNs() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// ticker sleeps until each next 1 ms tick until stop is set, and returns how late (ns)
// it woke each time, sorted.
func ticker(stop *atomic.Bool, out chan<- []uint64) {
	late := make([]uint64, 0, 400_000)
	next := time.Now()
	for !stop.Load() {
		next = next.Add(time.Millisecond)
		time.Sleep(time.Until(next))
		if d := time.Since(next); d > 0 {
			late = append(late, uint64(d))
		} else {
			late = append(late, 0)
		}
		if now := time.Now(); now.Sub(next) > time.Millisecond {
			next = now // far behind: restart from now rather than burst
		}
	}
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	out <- late
}

func main() {
	liveMB := envInt("LIVE_MB", 1024)
	parked := envInt("PARKED", 100_000)
	duration := time.Duration(envInt("DURATION", 300)) * time.Second
	allocMB := envInt("ALLOC_MB", 8*liveMB)
	chain := envInt("CHAIN", 16)
	if chain < 1 {
		chain = 1
	}
	slots := liveMB << 20 / (chain * objSz)
	if slots < 1 {
		slots = 1
	}
	nTables := (slots + fanOut - 1) / fanOut

	t0 := time.Now()
	tables := make([]*Table, nTables)
	for t := range tables {
		tables[t] = &Table{}
	}
	for s := 0; s < slots; s++ {
		tables[s/fanOut].slot[s%fanOut] = newChain(chain, uint64(s))
	}
	fmt.Fprintf(os.Stderr, "built %d slots x %d objects (%d MiB) in %v\n", slots, chain,
		slots*chain*objSz>>20, time.Since(t0).Round(time.Millisecond))

	release := make(chan struct{})
	var started, done sync.WaitGroup
	started.Add(parked)
	done.Add(parked)
	for i := 0; i < parked; i++ {
		go func() {
			started.Done()
			<-release
			done.Done()
		}()
	}
	started.Wait()
	budget := uint64(allocMB) << 20 / objSz // objects
	if prev := debug.SetGCPercent(-1); prev >= 0 {
		debug.SetGCPercent(prev)
	} else if envInt("PREFAULT", 1) != 0 {
		t := time.Now()
		for n := uint64(0); n < budget; n += uint64(chain) {
			sink = newChain(chain, 0)
		}
		sink = nil
		fmt.Fprintf(os.Stderr, "GOGC=off: pre-faulted %d MiB in %v\n", allocMB, time.Since(t).Round(time.Millisecond))
	}
	runtime.GC()

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gc0 := ms.NumGC
	r := rng{s: 88172645463325252}
	var allocs uint64
	var stopTicker atomic.Bool
	ticks := make(chan []uint64, 1)
	go ticker(&stopTicker, ticks)
	var gapMax time.Duration
	gapsOver1ms := 0
	cpu0 := cpuNs()
	start := time.Now()
	deadline := start.Add(duration)
	last := start
	for allocs < budget {
		for k := 0; k < 64; k++ {
			s := int(r.next() % uint64(slots))
			tables[s/fanOut].slot[s%fanOut] = newChain(chain, uint64(s))
		}
		allocs += uint64(64 * chain)
		now := time.Now()
		if gap := now.Sub(last); gap > gapMax {
			gapMax = gap
		}
		if now.Sub(last) > time.Millisecond {
			gapsOver1ms++
		}
		last = now
		if now.After(deadline) {
			break
		}
	}
	elapsed := time.Since(start)
	cpuPerAlloc := float64(cpuNs()-cpu0) / float64(allocs)
	stopTicker.Store(true)
	late := <-ticks
	if allocs < budget {
		fmt.Fprintf(os.Stderr, "DURATION reached after %d of %d MiB\n", allocs*objSz>>20, allocMB)
	}
	runtime.ReadMemStats(&ms)
	cycles := ms.NumGC - gc0

	var pauses []uint64
	n := cycles
	if n > 256 {
		fmt.Fprintf(os.Stderr, "%d cycles: only the last 256 pauses are known\n", n)
		n = 256
	}
	for i := uint32(0); i < n; i++ {
		pauses = append(pauses, ms.PauseNs[(ms.NumGC-i+255)%256])
	}
	sort.Slice(pauses, func(i, j int) bool { return pauses[i] < pauses[j] })

	for s := 0; s < slots; s += 4099 {
		if tables[s/fanOut].slot[s%fanOut].pad[0] != uint64(s) {
			fmt.Fprintf(os.Stderr, "slot %d corrupt\n", s)
			os.Exit(1)
		}
	}
	close(release)
	done.Wait()

	us := func(ns uint64) string { return strconv.FormatFloat(float64(ns)/1e3, 'f', 1, 64) }
	fmt.Fprintf(os.Stderr, "steady phase: %v, %d objects, %d cycles, pauses (us):", elapsed.Round(time.Millisecond), allocs, cycles)
	for _, p := range pauses {
		fmt.Fprintf(os.Stderr, " %s", us(p))
	}
	fmt.Fprintln(os.Stderr)
	fmt.Print("PAUSES")
	for _, p := range pauses {
		fmt.Printf(" %s", us(p))
	}
	fmt.Println()
	fmt.Printf("RESULT pause_p50 %s us\n", us(percentile(pauses, 50)))
	fmt.Printf("RESULT pause_p99 %s us\n", us(percentile(pauses, 99)))
	fmt.Printf("RESULT pause_max %s us\n", us(percentile(pauses, 100)))
	fmt.Printf("RESULT cycles %d cycles\n", cycles)
	fmt.Printf("RESULT allocs_per_s %.0f objects/s\n", float64(allocs)/elapsed.Seconds())
	fmt.Printf("RESULT heap_mb %d MiB\n", ms.HeapAlloc>>20)
	fmt.Printf("RESULT tick_p50 %s us\n", us(percentile(late, 50)))
	fmt.Printf("RESULT tick_p99 %s us\n", us(percentile(late, 99)))
	fmt.Printf("RESULT tick_p999 %s us\n", us(percentile(late, 99.9)))
	fmt.Printf("RESULT tick_max %s us\n", us(percentile(late, 100)))
	fmt.Printf("RESULT ticks %d ticks\n", len(late))
	fmt.Printf("RESULT gap_max %s us\n", us(uint64(gapMax)))
	fmt.Printf("RESULT gaps_over_1ms %d gaps\n", gapsOver1ms)
	fmt.Printf("RESULT cpu_ns_per_alloc %.1f ns\n", cpuPerAlloc)
}
