// Command mock serves a zero-latency OpenAI-compatible upstream on loopback
// for the gateway load run (bench/gateway.sh). It answers every request at
// once, with no faults, so the run measures the gateway.
package main

import (
	"flag"
	"log"
	"net/http"

	"gantry/pipeline/provider/fake"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7481", "listen address")
	flag.Parse()
	mux := http.NewServeMux()
	mux.Handle("/v1/", fake.Handler(fake.Options{Chunks: 8}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	log.Fatal(http.ListenAndServe(*addr, mux))
}
