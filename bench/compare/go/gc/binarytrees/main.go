// Command binarytrees is the Go reference side of gort's GC comparison suite
// (bench/compare/gc.sh): the Benchmarks Game binary-trees program, plain sequential
// version. It measures allocation and collection of many short-lived small objects
// (two-pointer nodes) next to one long-lived tree.
//
// Fairness: the same algorithm in all four versions (Go, gort, Boehm GC, new/delete):
// one mutator thread, depths one after the other, each tree built bottom-up (children
// before their parent) and checked by counting its nodes, so every version allocates
// exactly the same nodes in the same order. Only the collectors may use other threads
// (Go's background mark workers on the other Ps). No tuning: GOGC and GOMAXPROCS come from
// the environment as usual.
//
// Usage: binarytrees [depth] (default 21). The check lines go to stdout in the standard
// format; the GC statistics at exit go to stderr as one line:
//
//	GCSTATS num_gc=<n> pause_max_ns=<ns> pause_total_ns=<ns>
//
// (pause_max_ns is the largest entry of MemStats.PauseNs, which keeps the last 256
// cycles; each entry is one cycle's stop-the-world time.)
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
)

type Node struct {
	left, right *Node
}

func bottomUpTree(depth int) *Node {
	if depth <= 0 {
		return &Node{}
	}
	l := bottomUpTree(depth - 1)
	r := bottomUpTree(depth - 1)
	return &Node{l, r}
}

func (n *Node) itemCheck() int {
	if n.left == nil {
		return 1
	}
	return 1 + n.left.itemCheck() + n.right.itemCheck()
}

const minDepth = 4

func main() {
	n := 21
	if len(os.Args) > 1 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v < 0 {
			fmt.Fprintf(os.Stderr, "usage: binarytrees [depth]\n")
			os.Exit(2)
		}
		n = v
	}
	maxDepth := n
	if minDepth+2 > n {
		maxDepth = minDepth + 2
	}
	stretchDepth := maxDepth + 1
	fmt.Printf("stretch tree of depth %d\t check: %d\n", stretchDepth,
		bottomUpTree(stretchDepth).itemCheck())

	longLivedTree := bottomUpTree(maxDepth)

	for depth := minDepth; depth <= maxDepth; depth += 2 {
		iterations := 1 << uint(maxDepth-depth+minDepth)
		check := 0
		for i := 0; i < iterations; i++ {
			check += bottomUpTree(depth).itemCheck()
		}
		fmt.Printf("%d\t trees of depth %d\t check: %d\n", iterations, depth, check)
	}
	fmt.Printf("long lived tree of depth %d\t check: %d\n", maxDepth, longLivedTree.itemCheck())

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var pauseMax uint64
	for _, p := range ms.PauseNs {
		if p > pauseMax {
			pauseMax = p
		}
	}
	fmt.Fprintf(os.Stderr, "GCSTATS num_gc=%d pause_max_ns=%d pause_total_ns=%d\n",
		ms.NumGC, pauseMax, ms.PauseTotalNs)
}
