// Command net is the Go side of gort's networking comparison (bench/compare/net.sh): the
// reference servers, and the one load generator that drives both Go's and gort's echo
// servers in the same run.
//
//	net -mode=echo-server [-addr=127.0.0.1:0]   prints "listening on <addr>", serves
//	net -mode=http-server [-addr=127.0.0.1:0]   net/http hello world, same output
//	net -mode=echo-client -addr=<addr> [-conns=64 -size=64 -duration=5s -warmup=1s]
//
// The client prints exactly "RESULT echo_rps <value> req/s" on stdout: round trips of
// one size-byte message per second over all connections, each connection a goroutine
// that writes a message and reads the echo back (a request/response exchange, not a
// stream), counted after the warm-up.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	mode := flag.String("mode", "", "echo-server, http-server or echo-client")
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on or dial")
	conns := flag.Int("conns", 64, "client connections")
	size := flag.Int("size", 64, "message bytes")
	duration := flag.Duration("duration", 5*time.Second, "measured time")
	warmup := flag.Duration("warmup", time.Second, "unmeasured time first")
	flag.Parse()
	switch *mode {
	case "echo-server":
		echoServer(*addr)
	case "http-server":
		httpServer(*addr)
	case "echo-client":
		echoClient(*addr, *conns, *size, *warmup, *duration)
	default:
		fmt.Fprintln(os.Stderr, "usage: net -mode=echo-server|http-server|echo-client")
		os.Exit(2)
	}
}

func listen(addr string) net.Listener {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", l.Addr())
	os.Stdout.Sync()
	return l
}

func echoServer(addr string) {
	l := listen(addr)
	for {
		c, err := l.Accept()
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			buf := make([]byte, 16384)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}(c)
	}
}

func httpServer(addr string) {
	l := listen(addr)
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("Hello, World!\n"))
	})
	fmt.Fprintln(os.Stderr, http.Serve(l, nil))
	os.Exit(1)
}

func echoClient(addr string, conns, size int, warmup, duration time.Duration) {
	var count atomic.Int64
	var measuring, stop atomic.Bool
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		wg.Add(1)
		go func(c net.Conn) {
			defer wg.Done()
			defer c.Close()
			msg := make([]byte, size)
			got := make([]byte, size)
			for !stop.Load() {
				if _, err := c.Write(msg); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				if _, err := io.ReadFull(c, got); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				if measuring.Load() {
					count.Add(1)
				}
			}
		}(c)
	}
	time.Sleep(warmup)
	measuring.Store(true)
	start := time.Now()
	time.Sleep(duration)
	n := count.Load()
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()
	fmt.Printf("RESULT echo_rps %.0f req/s\n", float64(n)/elapsed.Seconds())
}
