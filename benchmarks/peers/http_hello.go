// The HTTP peer for benchmarks/http_vs_peers.sh: Go's net/http answering
// "Hello, world!" on 127.0.0.1 (keep-alive is net/http's default). Run with
// GOMAXPROCS=1 beside weft's one-hub server.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	port := flag.Int("port", 8080, "port on 127.0.0.1")
	maxSecs := flag.Float64("max-secs", 60, "exit after this long")
	flag.Parse()
	go func() {
		time.Sleep(time.Duration(*maxSecs * float64(time.Second)))
		os.Exit(0)
	}()
	body := []byte("Hello, world!")
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})
	if err := http.ListenAndServe(fmt.Sprintf("127.0.0.1:%d", *port), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
