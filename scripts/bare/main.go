// Command bare is the machine's floor for a JSON read: a net/http server
// that answers every request with one file's bytes as application/json,
// which scripts/reads.sh drives beside hmp's cached daily report.
//
//	go run ./scripts/bare -addr 127.0.0.1:18081 -file body.json
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18081", "listen address")
	file := flag.String("file", "body.json", "the bytes to answer")
	flag.Parse()
	body, err := os.ReadFile(*file)
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
