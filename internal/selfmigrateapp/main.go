// Command selfmigrateapp is a test app that migrates its own schema, as
// Rails, Django or Gitea do: `app migrate` (or `app` with
// MIGRATE_ON_START=1, as it starts) brings the database at DATABASE_URL to
// the schema of its version (GANTRY_VERSION), and every GET / records a
// visit. Version 1 writes visits.page; version 2's migration renames that
// column to path, a destructive change version 1 cannot live with. It is
// built by tests and never shipped.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	_ "github.com/lib/pq"
)

// v2 says this build is version 2 (the version Gantry deploys it as).
var v2 = strings.HasPrefix(os.Getenv("GANTRY_VERSION"), "2.")

func migrate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS visits (id bigserial PRIMARY KEY, page text NOT NULL)`); err != nil {
		return err
	}
	if !v2 {
		return nil
	}
	_, err := db.ExecContext(ctx, `DO $$ BEGIN
		IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'visits' AND column_name = 'page') THEN
			ALTER TABLE visits RENAME COLUMN page TO path;
		END IF;
	END $$`)
	return err
}

func main() {
	db, err := sql.Open("postgres", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	if len(os.Args) > 1 && os.Args[1] == "migrate" || os.Getenv("MIGRATE_ON_START") == "1" {
		if err := migrate(context.Background(), db); err != nil {
			log.Fatalf("migrate: %v", err)
		}
		if len(os.Args) > 1 {
			fmt.Println("migrated to version", os.Getenv("GANTRY_VERSION"))
			return
		}
	}
	column := "page"
	if v2 {
		column = "path"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /up", func(w http.ResponseWriter, r *http.Request) {
		if err := db.PingContext(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if _, err := db.ExecContext(r.Context(), `INSERT INTO visits (`+column+`) VALUES ('/')`); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "<dl><dt>version</dt><dd id=\"version\">%s</dd></dl>\n", os.Getenv("GANTRY_VERSION"))
	})
	srv := &http.Server{Addr: "127.0.0.1:" + os.Getenv("PORT"), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
			log.Fatal(err)
		}
	}()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
}
