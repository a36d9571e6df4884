// Command forcedgc is the Go side of the parallel-marking comparison in gort's GC suite
// (bench/compare/gc.sh, part "forcedgc"; gort's side is bench/compare/gc/forcedgc_gort.cpp):
// the time of one forced collection (runtime.GC: mark and sweep) of a live binary tree of
// depth 20 (2,097,151 two-pointer nodes, 32 MiB in Go's 16-byte class) with nothing else
// running. Every P is idle, so both runtimes mark on all of them: run with GOMAXPROCS=1
// and GOMAXPROCS=2, the ratio is the marking's parallel speedup.
//
// Usage: forcedgc [depth [collections]] (defaults 20 and 20). Prints
//
//	RESULT ms_per_gc <ms>
//
// and exits non-zero if the tree lost a node.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
)

type Node struct {
	left, right *Node
}

func tree(depth int) *Node {
	n := &Node{}
	if depth > 0 {
		n.left = tree(depth - 1)
		n.right = tree(depth - 1)
	}
	return n
}

func count(n *Node) int {
	if n == nil {
		return 0
	}
	return 1 + count(n.left) + count(n.right)
}

func arg(i, def int) int {
	if len(os.Args) <= i {
		return def
	}
	v, err := strconv.Atoi(os.Args[i])
	if err != nil || v < 0 || v > 26 && i == 1 {
		fmt.Fprintf(os.Stderr, "usage: %s [depth [collections]]\n", os.Args[0])
		os.Exit(2)
	}
	return v
}

func main() {
	depth, rounds := arg(1, 20), arg(2, 20)
	root := tree(depth)
	runtime.GC()
	start := time.Now()
	for i := 0; i < rounds; i++ {
		runtime.GC()
	}
	per := time.Since(start) / time.Duration(rounds)
	if got, want := count(root), 1<<(depth+1)-1; got != want {
		fmt.Fprintf(os.Stderr, "tree has %d nodes, want %d\n", got, want)
		os.Exit(1)
	}
	fmt.Printf("RESULT ms_per_gc %.2f\n", float64(per.Microseconds())/1000)
}
