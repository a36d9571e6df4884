// Command timer is the Go reference side of gort's timer comparison (bench/compare/run.sh).
// It runs one workload per process and prints exactly
//
//	RESULT <workload> <value> <unit>
//
// on stdout; everything else goes to stderr. Run: timer -workload=sleep_oversleep_p99
//
// Every workload is the same experiment: 100,000 goroutines on 2 Ps each sleep 1 ms ten
// times and record how much longer than 1 ms each sleep took (the oversleep). The workload
// name only chooses which statistic is reported: the p50, p99 or maximum oversleep of the
// 1,000,000 samples (µs), or the wall time of the experiment / 10 (ms per sleep round).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"
)

const (
	goroutines = 100_000
	sleeps     = 10 // sleeps per goroutine
	sleepFor   = time.Millisecond
	rounds     = 3 // measured runs of the experiment (after one warm-up); we report the median
)

// stats of one run of the experiment.
type stats struct {
	p50, p99, max float64 // oversleep, µs
	roundMs       float64 // wall time / sleeps, ms
	// Diagnostics (stderr only): when goroutines began their first sleep, ms after the
	// gate opened, p50 and max over the goroutines.
	startP50, startMax float64
}

// samples[g*sleeps+i] is goroutine g's i-th oversleep in ns. Allocated once, each goroutine
// writes only its own slots, so no locking; a run starts by filling it with -1 so a slot
// that was never written shows up in the check.
var samples = make([]int64, goroutines*sleeps)

// starts[g] is when goroutine g began its first sleep, ns after the gate opened.
var starts = make([]int64, goroutines)

func check(ok bool, what string) {
	if !ok {
		fmt.Fprintln(os.Stderr, "CHECK FAILED:", what)
		os.Exit(1)
	}
}

// percentile of sorted s by nearest rank: the smallest sample with at least p% of all
// samples at or below it (the same formula in all three implementations).
func percentile(s []int64, p int) int64 {
	return s[(len(s)*p+99)/100-1]
}

// experiment: spawn all goroutines, let each block on the release gate (started tells main
// they are all there), then open the gate and time from there until the last has finished.
// Each goroutine then loops: t0 = now; sleep 1 ms; sample = now - t0 - 1 ms.
func experiment() stats {
	for i := range samples {
		samples[i] = -1
	}
	var started, release, finished sync.WaitGroup
	var start time.Time // set before the gate opens, read after
	started.Add(goroutines)
	release.Add(1)
	finished.Add(goroutines)
	for g := 0; g < goroutines; g++ {
		go func(g int, slots []int64) {
			started.Done()
			release.Wait()
			for i := range slots {
				t0 := time.Now()
				if i == 0 {
					starts[g] = int64(t0.Sub(start))
				}
				time.Sleep(sleepFor)
				slots[i] = int64(time.Since(t0) - sleepFor)
			}
			finished.Done()
		}(g, samples[g*sleeps:(g+1)*sleeps])
	}
	started.Wait()
	start = time.Now()
	release.Done()
	finished.Wait()
	wall := time.Since(start)

	sorted := append([]int64(nil), samples...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	// Sleep must never return early: a negative sample would be a timer bug (and -1 an
	// unwritten slot).
	check(sorted[0] >= 0, fmt.Sprintf("oversleep %d ns < 0 (sleep returned early, or a slot was not written)", sorted[0]))
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	return stats{
		p50:      us(percentile(sorted, 50)),
		p99:      us(percentile(sorted, 99)),
		max:      us(sorted[len(sorted)-1]),
		roundMs:  float64(wall.Nanoseconds()) / 1e6 / sleeps,
		startP50: us(percentile(starts, 50)) / 1e3,
		startMax: us(starts[len(starts)-1]) / 1e3,
	}
}

func (s stats) String() string {
	return fmt.Sprintf("oversleep p50 %.1f us, p99 %.1f us, max %.1f us; %.3f ms per round; "+
		"first sleep p50 %.1f ms, max %.1f ms after the gate", s.p50, s.p99, s.max, s.roundMs,
		s.startP50, s.startMax)
}

func median3(a, b, c float64) float64 {
	v := []float64{a, b, c}
	sort.Float64s(v)
	return v[1]
}

func main() {
	workload := flag.String("workload", "",
		"sleep_oversleep_p50 | sleep_oversleep_p99 | sleep_oversleep_max | sleep_round_ms")
	flag.Parse()
	var pick func(stats) float64
	unit := "us"
	switch *workload {
	case "sleep_oversleep_p50":
		pick = func(s stats) float64 { return s.p50 }
	case "sleep_oversleep_p99":
		pick = func(s stats) float64 { return s.p99 }
	case "sleep_oversleep_max":
		pick = func(s stats) float64 { return s.max }
	case "sleep_round_ms":
		pick, unit = func(s stats) float64 { return s.roundMs }, "ms"
	default:
		flag.Usage()
		os.Exit(2)
	}
	runtime.GOMAXPROCS(2)
	fmt.Fprintf(os.Stderr, "%s warm-up: %v\n", *workload, experiment())
	var v [rounds]float64
	for i := 0; i < rounds; i++ {
		runtime.GC() // a collection owed by the previous run is not charged to this one
		s := experiment()
		fmt.Fprintf(os.Stderr, "%s round %d: %v\n", *workload, i, s)
		v[i] = pick(s)
	}
	fmt.Printf("RESULT %s %.2f %s\n", *workload, median3(v[0], v[1], v[2]), unit)
}
