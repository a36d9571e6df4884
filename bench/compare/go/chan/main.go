// Command chan is the Go reference side of gort's channel and mutex comparison
// (bench/compare/run.sh). It runs one workload per process and prints exactly
//
//	RESULT <workload> <value> ns/op
//
// on stdout; everything else goes to stderr. Run: chan -workload=chan_pingpong_1p
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

const (
	pingN   = 1_000_000 // round trips per ping-pong round
	bufN    = 4_000_000 // items per buffered round, split evenly over the producers
	bufCap  = 1024      // capacity of the buffered channel
	selectN = 1_000_000 // items sent by each of the two select producers
	mutexN  = 2_000_000 // lock/unlock pairs per mutex round, over all goroutines
	mutexG  = 100       // goroutines sharing the mutex
	rounds  = 5         // measured rounds (after one warm-up); we report the minimum
)

// bestOf runs f once as a warm-up (stack growth, heap growth, sudog caches) and
// then `rounds` times, returning the fastest round: the minimum is the least
// noisy estimate of the cost on a shared machine.
func bestOf(name string, f func() time.Duration) time.Duration {
	fmt.Fprintf(os.Stderr, "%s warm-up: %v\n", name, f())
	best := time.Duration(1<<63 - 1)
	for i := 0; i < rounds; i++ {
		runtime.GC() // a collection owed by the previous round is not charged to this one
		d := f()
		fmt.Fprintf(os.Stderr, "%s round %d: %v\n", name, i, d)
		if d < best {
			best = d
		}
	}
	return best
}

func check(ok bool, what string) {
	if !ok {
		fmt.Fprintln(os.Stderr, "CHECK FAILED:", what)
		os.Exit(1)
	}
}

// pingpong: main sends on a, the echo goroutine receives and sends it back on b.
// Both channels are unbuffered, so every round trip is two rendezvous, each of
// which parks one goroutine and readies the other: the blocking/wake-up path.
// The round includes starting the echo goroutine and closing a (~1 µs in total).
func pingpong() time.Duration {
	start := time.Now()
	a, b := make(chan int), make(chan int)
	go func() {
		for v := range a {
			b <- v + 1
		}
	}()
	for i := 0; i < pingN; i++ {
		a <- i
		check(<-b == i+1, "ping-pong value")
	}
	close(a) // ends the echo goroutine
	return time.Since(start)
}

// buffered: `prod` producers share bufN sends into one channel of capacity bufCap,
// `cons` consumers range over it. Producers rarely block, so this mostly measures
// the buffer fast path under contention on the channel lock, plus the parks when
// the buffer runs full or empty. Closing after the producers finish ends the ranges.
func buffered(prod, cons int) func() time.Duration {
	return func() time.Duration {
		ch := make(chan int, bufCap)
		per := bufN / prod
		var sent, received sync.WaitGroup
		var mu sync.Mutex
		total := int64(0)
		start := time.Now()
		sent.Add(prod)
		received.Add(cons)
		for c := 0; c < cons; c++ {
			go func() {
				sum := int64(0)
				for v := range ch {
					sum += int64(v)
				}
				mu.Lock()
				total += sum
				mu.Unlock()
				received.Done()
			}()
		}
		for p := 0; p < prod; p++ {
			go func() {
				for i := 0; i < per; i++ {
					ch <- i
				}
				sent.Done()
			}()
		}
		sent.Wait()
		close(ch)
		received.Wait()
		d := time.Since(start)
		check(total == int64(prod)*int64(per)*int64(per-1)/2, "buffered sum")
		return d
	}
}

// select2: two producers each send selectN ints on their own unbuffered channel and
// close it; main selects over both until both are closed and drained, disabling a
// closed channel by setting it to nil (a nil channel is never ready in a select).
func select2() time.Duration {
	producer := func(ch chan int) {
		for i := 0; i < selectN; i++ {
			ch <- i
		}
		close(ch)
	}
	start := time.Now()
	a, b := make(chan int), make(chan int)
	go producer(a)
	go producer(b)
	n, sum := 0, int64(0)
	for a != nil || b != nil {
		select {
		case v, ok := <-a:
			if !ok {
				a = nil
				continue
			}
			n, sum = n+1, sum+int64(v)
		case v, ok := <-b:
			if !ok {
				b = nil
				continue
			}
			n, sum = n+1, sum+int64(v)
		}
	}
	d := time.Since(start)
	check(n == 2*selectN && sum == int64(selectN)*(selectN-1), "select count/sum")
	return d
}

// mutexContended: mutexG goroutines on 2 Ps each do mutexN/mutexG lock; counter++;
// unlock on one mutex. Far more goroutines than Ps, so waiters queue and park:
// this measures the mutex's spin-then-park path and its hand-off, not just a CAS.
func mutexContended() time.Duration {
	var mu sync.Mutex
	var wg sync.WaitGroup
	counter := 0
	start := time.Now()
	wg.Add(mutexG)
	for g := 0; g < mutexG; g++ {
		go func() {
			for i := 0; i < mutexN/mutexG; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	d := time.Since(start)
	check(counter == mutexN, "mutex counter")
	return d
}

func main() {
	workload := flag.String("workload", "", "chan_pingpong_1p | chan_pingpong_2p | "+
		"chan_buffered_1x1 | chan_buffered_4x4 | select_2chan | mutex_contended")
	flag.Parse()
	procs, ops := 2, 0.0 // GOMAXPROCS, operations per round
	var f func() time.Duration
	switch *workload {
	case "chan_pingpong_1p":
		procs, ops, f = 1, pingN, pingpong
	case "chan_pingpong_2p":
		ops, f = pingN, pingpong
	case "chan_buffered_1x1":
		ops, f = bufN, buffered(1, 1)
	case "chan_buffered_4x4":
		ops, f = bufN, buffered(4, 4)
	case "select_2chan":
		ops, f = 2*selectN, select2
	case "mutex_contended":
		ops, f = mutexN, mutexContended
	default:
		flag.Usage()
		os.Exit(2)
	}
	runtime.GOMAXPROCS(procs)
	d := bestOf(*workload, f)
	fmt.Printf("RESULT %s %.1f ns/op\n", *workload, float64(d.Nanoseconds())/ops)
}
