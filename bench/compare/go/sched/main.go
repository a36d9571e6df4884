// Command sched is the Go reference side of gort's scheduler comparison suite
// (bench/compare/run.sh). It runs one workload per process and prints exactly
//
//	RESULT <workload> <value> <unit>
//
// on stdout; everything else goes to stderr. Run: sched -workload=spawn_join
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

const (
	spawnN  = 1_000_000 // goroutines per spawn_join round
	yieldN  = 2_000_000 // Gosched calls per goroutine in yield_pingpong
	parkedN = 1_000_000 // goroutines kept blocked in parked_memory ($COMPARE_PARKED_N overrides)
	rounds  = 5         // measured rounds (after one warm-up); we report the minimum
)

// bestOf runs f once as a warm-up (page faults, stack/g free lists, heap growth)
// and then `rounds` times, returning the fastest round: the minimum is the least
// noisy estimate of the cost on a shared machine.
func bestOf(name string, f func() time.Duration) time.Duration {
	fmt.Fprintf(os.Stderr, "%s warm-up: %v\n", name, f())
	best := time.Duration(1<<63 - 1)
	for i := 0; i < rounds; i++ {
		// Start every round from a collected heap so a GC cycle left over from
		// the previous round is not charged to this one.
		runtime.GC()
		d := f()
		fmt.Fprintf(os.Stderr, "%s round %d: %v\n", name, i, d)
		if d < best {
			best = d
		}
	}
	return best
}

// spawnJoin: cost of creating, scheduling and retiring one goroutine, with a
// second P free to steal. The spawner never blocks or yields inside the loop,
// like gort's (Boost.Fiber's has to yield every 256 spawns; see its source).
func spawnJoin() time.Duration {
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < spawnN; i++ {
		wg.Add(1)
		go func() { wg.Done() }()
	}
	wg.Wait()
	return time.Since(start)
}

// yieldPingpong: two goroutines on one P hand the CPU back and forth with
// Gosched, so every call is one user-space context switch through the scheduler.
func yieldPingpong() time.Duration {
	var wg sync.WaitGroup
	wg.Add(2)
	start := time.Now()
	for g := 0; g < 2; g++ {
		go func() {
			for i := 0; i < yieldN; i++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// rssBytes reads the resident set size from /proc/self/statm (2nd field, in pages).
func rssBytes() int64 {
	var size, resident int64
	f, err := os.Open("/proc/self/statm")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	if _, err := fmt.Fscan(f, &size, &resident); err != nil {
		panic(err)
	}
	return resident * int64(os.Getpagesize())
}

// parkedMemory: resident memory held by a goroutine that is blocked (stack, g,
// wait-queue entry). RSS rather than Go's heap stats, so the number means the
// same thing as for the C++ runtimes.
func parkedMemory() float64 {
	n := parkedN
	if v, err := strconv.Atoi(os.Getenv("COMPARE_PARKED_N")); err == nil && v > 0 {
		n = v // a smaller count makes the suite quicker where page faults are slow
	}
	var started, release, finished sync.WaitGroup
	release.Add(1)
	started.Add(n)
	finished.Add(n)
	runtime.GC()
	before := rssBytes()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			started.Done() // this goroutine has reached its blocking point...
			release.Wait() // ...and parks here until main releases everyone
			finished.Done()
		}()
	}
	started.Wait() // every goroutine exists and is (about to be) parked
	after := rssBytes()
	t1 := time.Now()
	release.Done()
	finished.Wait()
	fmt.Fprintf(os.Stderr, "parked_memory: rss before %d, after %d; park %v, finish %v\n",
		before, after, t1.Sub(t0), time.Since(t1))
	return float64(after-before) / float64(n)
}

func main() {
	workload := flag.String("workload", "", "spawn_join | yield_pingpong | parked_memory")
	flag.Parse()
	switch *workload {
	case "spawn_join":
		runtime.GOMAXPROCS(2)
		d := bestOf(*workload, spawnJoin)
		fmt.Printf("RESULT spawn_join %.1f ns/op\n", float64(d.Nanoseconds())/spawnN)
	case "yield_pingpong":
		runtime.GOMAXPROCS(1)
		d := bestOf(*workload, yieldPingpong)
		fmt.Printf("RESULT yield_pingpong %.1f ns/op\n", float64(d.Nanoseconds())/(2*yieldN))
	case "parked_memory":
		runtime.GOMAXPROCS(1) // same as the single-threaded C++ versions
		fmt.Printf("RESULT parked_memory %.0f bytes/goroutine\n", parkedMemory())
	default:
		fmt.Fprintln(os.Stderr, "usage: sched -workload=spawn_join|yield_pingpong|parked_memory")
		os.Exit(2)
	}
}
