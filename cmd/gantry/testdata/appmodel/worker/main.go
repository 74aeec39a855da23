// Command worker is the worker of the app model scenario: it takes no
// requests; it counts the uploads it finds in the shared directory.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			files, _ := os.ReadDir(os.Getenv("GANTRY_PERSIST_UPLOADS"))
			fmt.Printf("%d uploads; web at %s\n", len(files), os.Getenv("GANTRY_SERVICE_WEB_URL"))
		}
	}
}
