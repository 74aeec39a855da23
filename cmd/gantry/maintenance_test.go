package main

import (
	"database/sql"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/lib/pq"
)

// TestHeldWritesDuringMaintenanceDeploy: a release whose schema change is
// not backward compatible is deployed with the maintenance strategy while
// writers post through the router. Writes are held while the migration
// runs and the new release takes over; afterwards every write that got a
// 2xx is in the database, and every other one got a clean 503.
func TestHeldWritesDuringMaintenanceDeploy(t *testing.T) {
	s, dbURL := writerServer(t, "maintenance", 2)
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "HEAD~1")
	mustCLI(t, s.APIURL, "release", "build", "--ref", "main")

	// Writers post through the router until told to stop.
	type result struct {
		id     string
		status int
		retry  string
		err    error
	}
	var mu sync.Mutex
	var results []result
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 60 * time.Second}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				req, _ := http.NewRequest(http.MethodPost, s.RouterURL+"/write?id="+id, nil)
				req.Host = "test.writer.localhost"
				resp, err := client.Do(req)
				r := result{id: id, err: err}
				if err == nil {
					r.status, r.retry = resp.StatusCode, resp.Header.Get("Retry-After")
					resp.Body.Close()
				}
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	mustCLI(t, s.APIURL, "deploy", "test", "--release", "2.0.0")
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()

	d := lastDeploymentOf(t, s, "writer", "test")
	for _, step := range []string{"hold-writes", "db-expand", "switch", "release-writes"} {
		if !journalHas(d, step, "") {
			t.Errorf("maintenance deploy has no %s step: %+v", step, d.Steps)
		}
	}
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stored := map[string]bool{}
	rows, err := db.Query(`SELECT id FROM public.writes`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		stored[id] = true
	}
	rows.Close()
	var acked, refused int
	var bad []string
	for _, r := range results {
		switch {
		case r.err != nil:
			bad = append(bad, fmt.Sprintf("%s: %v", r.id, r.err))
		case r.status >= 200 && r.status < 300:
			acked++
			if !stored[r.id] {
				bad = append(bad, r.id+": acknowledged but not in the database")
			}
		case r.status == http.StatusServiceUnavailable && r.retry != "":
			refused++
		default:
			bad = append(bad, fmt.Sprintf("%s: status %d", r.id, r.status))
		}
	}
	if len(bad) > 0 {
		t.Fatalf("%d of %d writes went wrong:\n%s", len(bad), len(results), strings.Join(bad[:min(len(bad), 20)], "\n"))
	}
	if acked == 0 {
		t.Fatal("no write was acknowledged: the writers did not run")
	}
	t.Logf("%d writes acknowledged and stored, %d refused cleanly with 503", acked, refused)
}
