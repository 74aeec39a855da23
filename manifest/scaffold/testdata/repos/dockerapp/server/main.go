// Command server is the dockerapp sample's web server: it answers every
// path with a greeting on 127.0.0.1:$PORT.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "dockerapp says hello")
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, nil))
}
