package kubernetes_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/artifact"
	"github.com/gantry-dev/gantry/driver/docker/registry"
	"github.com/gantry-dev/gantry/driver/kubernetes"
	"github.com/gantry-dev/gantry/internal/dockertest"
	"github.com/gantry-dev/gantry/internal/k8stest"
	"github.com/gantry-dev/gantry/internal/pgtest"
	"github.com/gantry-dev/gantry/internal/tarball"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
)

// TestDatabaseOnKubernetes is W1 and W2 of the seeds on the kubernetes
// runtime with a real PostgreSQL, through the real binary. Each release is
// built once (an image pushed to a real registry by digest, its SQL
// migrations in the artifact store) and never rebuilt:
//
//   - W1: 1.0.0 on test, its image copied by digest into test's registry
//     (runtime.registry); promoted to prod, whose image stream is tagged to
//     the same digest (runtime.images: imagestream), and prod's Deployment
//     runs it from the internal registry by that digest.
//   - W2: prod cloned into testnew with its data (rows written on prod are
//     in testnew's own database); 1.1.0, which adds a column (expand, and a
//     contract), on testnew: the column exists before 1.1.0's Deployment
//     is created; testnew renamed to test; 1.1.0 promoted to prod: expanded
//     there, contracted once the old slot is scaled down.
//   - Schema-aware rollback: a flip back to the warm 1.0.0 rolls the
//     expand back; after a contract a rollback to 1.0.0 is refused (exit
//     4), and forced it restores the snapshot taken before the contract.
func TestDatabaseOnKubernetes(t *testing.T) {
	c := k8stest.Need(t, cluster)
	pg := pgtest.Start(t)
	reg, err := dockertest.StartRegistry(t.TempDir())
	if err != nil {
		if os.Getenv("GANTRY_INTEGRATION") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	t.Cleanup(func() { reg.Close() })
	ns := c.Namespace(t, "w2db") // a prefix of the environments' namespaces
	manifest := `app: shop
database:
  engine: postgres
  migrations: {engine: sql, dir: db/migrations}
services:
  web:
    docker: {dockerfile: Dockerfile}
    run: /web
    instances: 1
    health: {path: /up}
environments:
  test:
    hosts: [test.shop.localhost]
    runtime: {driver: kubernetes, namespace: ` + ns + `-test, registry: ` + reg.Addr + `/test}
    keep_warm: 10m
  prod:
    hosts: [shop.localhost]
    runtime: {driver: kubernetes, namespace: ` + ns + `-prod, routing: route, images: imagestream}
    promote_from: test
    keep_warm: 10m
`
	ci := reg.Addr + "/ci/web"
	v10 := pushImage(t, ci, "1.0.0")
	v11 := pushImage(t, ci, "1.1.0")
	migrations := map[string]map[string]string{
		"1.0.0": {"expand/0001_items.sql": "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);"},
		"1.1.0": {
			"expand/0001_items.sql":   "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);",
			"expand/0002_price.sql":   "ALTER TABLE items ADD COLUMN price_cents integer;",
			"contract/0002_price.sql": "UPDATE items SET price_cents = 0 WHERE price_cents IS NULL; ALTER TABLE items ALTER COLUMN price_cents SET NOT NULL;",
			"rollback/0002_price.sql": "ALTER TABLE items DROP COLUMN price_cents;",
		},
	}
	g := newServerWith(t, c, manifest, map[string]string{"1.0.0": v10, "1.1.0": v11}, migrationArtifacts(t, migrations))
	urls := map[string]string{"test": pg.CreateDB(t, "shop_test"), "prod": pg.CreateDB(t, "shop_prod"), "testnew": pg.URLFor("shop_testnew")}
	for env, url := range urls {
		g.stdin(url, 0, "secret", "set", env, "DATABASE_URL")
	}
	ctx := context.Background()
	dc, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	// The hosts this test's environments claim go with it: other tests of
	// the package list the app's routing objects cluster-wide.
	t.Cleanup(func() {
		for _, env := range []string{"test", "prod", "testnew"} {
			for _, gvr := range k8stest.Routing {
				err := dc.Resource(gvr).Namespace(ns+"-"+env).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "gantry.dev/app=shop"})
				if err != nil && !apierrors.IsNotFound(err) {
					t.Errorf("delete %s of %s-%s: %v", gvr.Resource, ns, env, err)
				}
			}
		}
	})
	// streamTag is what prod's image stream tag names.
	streamTag := func(ns, tag string) string {
		t.Helper()
		is, err := dc.Resource(kubernetes.ImageStreams).Namespace(ns).Get(ctx, "shop-web", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("ImageStream %s/shop-web: %v", ns, err)
		}
		tags, _, _ := unstructured.NestedSlice(is.Object, "spec", "tags")
		for _, x := range tags {
			if m := x.(map[string]any); m["name"] == tag {
				return m["from"].(map[string]any)["name"].(string)
			}
		}
		return ""
	}
	internal := func(ns, image string) string {
		return kubernetes.DefaultInternalRegistry + "/" + ns + "/shop-web" + image[strings.Index(image, "@"):]
	}
	db := func(env string) *sql.DB {
		t.Helper()
		d, err := sql.Open("postgres", urls[env])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	hasPrice := func(env string) bool {
		t.Helper()
		var n int
		if err := db(env).QueryRow(`SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'price_cents'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	status := func(env string) gantry.DatabaseStatus {
		t.Helper()
		var st gantry.DatabaseStatus
		if err := json.Unmarshal([]byte(g.cli(0, "db", "status", env, "--json")), &st); err != nil {
			t.Fatal(err)
		}
		return st
	}

	// W1: build once, test by a registry copy, prod by an image stream tag.
	g.cli(0, "deploy", "test", "--release", "1.0.0")
	copied := reg.Addr + "/test/web" + v10[strings.Index(v10, "@"):]
	if got := liveImage(t, c, ns+"-test"); got != copied {
		t.Errorf("test runs %s, want the copy by digest in its registry %s", got, copied)
	}
	if ref, err := registry.ParseRef(copied); err != nil {
		t.Error(err)
	} else if has, err := (&registry.Client{}).Has(ctx, ref); !has || err != nil {
		t.Errorf("test's registry has the copied image: %t, %v", has, err)
	}
	g.cli(0, "promote", "test", "prod")
	if got, want := liveImage(t, c, ns+"-prod"), internal(ns+"-prod", v10); got != want {
		t.Errorf("prod runs %s, want the image stream's %s", got, want)
	}
	if got := streamTag(ns+"-prod", "1.0.0"); got != v10 {
		t.Errorf("prod's image stream tag 1.0.0 is from %q, want %s", got, v10)
	}
	if _, err := db("prod").Exec(`INSERT INTO items (name) VALUES ('written on prod')`); err != nil {
		t.Fatal(err)
	}

	// W2: testnew as a copy of prod, data included.
	out := g.cli(0, "env", "clone", "prod", "testnew", "--with-data")
	var name string
	if err := db("testnew").QueryRow(`SELECT name FROM items`).Scan(&name); err != nil || name != "written on prod" {
		t.Fatalf("testnew's database: %q, %v; want prod's row\n%s", name, err, out)
	}
	if got, want := liveImage(t, c, ns+"-testnew"), internal(ns+"-testnew", v10); got != want {
		t.Errorf("testnew runs %s, want %s", got, want)
	}
	// The expand is in testnew's database when 1.1.0's Deployment first
	// appears (checked at that moment, from a watch).
	var expandedFirst bool
	seen := watchFirst(t, c, ns+"-testnew", internal(ns+"-testnew", v11), func() { expandedFirst = hasPrice("testnew") })
	g.cli(0, "deploy", "testnew", "--release", "1.1.0")
	if !seen() {
		t.Error("no Deployment of 1.1.0 seen in testnew")
	} else if !expandedFirst {
		t.Error("1.1.0's Deployment appeared before 0002_price was expanded")
	}
	if st := status("testnew"); st.Active != "0002_price" {
		t.Errorf("testnew's active migration %q, want 0002_price (1.0.0 kept warm)", st.Active)
	}
	g.cli(0, "env", "rename", "testnew", "test", "--displace-to", "testold")
	if got, want := liveImage(t, c, ns+"-testnew"), internal(ns+"-testnew", v11); got != want {
		t.Errorf("the renamed test runs %s, want %s", got, want)
	}

	// 1.1.0 to prod: expanded there, prod's 1.0.0 kept warm.
	g.cli(0, "promote", "test", "prod")
	if got, want := liveImage(t, c, ns+"-prod"), internal(ns+"-prod", v11); got != want {
		t.Errorf("prod runs %s after the promotion, want %s", got, want)
	}
	if !hasPrice("prod") || status("prod").Active != "0002_price" {
		t.Errorf("prod after the promotion: price column %t, active %q; want expanded, not contracted", hasPrice("prod"), status("prod").Active)
	}
	// Schema-aware rollback, warm: the flip back undoes the expand.
	out = g.cli(0, "rollback", "prod")
	if got, want := liveImage(t, c, ns+"-prod"), internal(ns+"-prod", v10); got != want {
		t.Errorf("prod runs %s after the rollback, want %s\n%s", got, want, out)
	}
	if hasPrice("prod") {
		t.Errorf("the price column is still on prod after the rollback\n%s", out)
	}
	// Again; the contract waits while the old slot is warm (it has
	// replicas and needs the old schema), then is forced.
	g.cli(0, "promote", "test", "prod")
	if n := replicas(t, c, ns+"-prod", "blue"); n == 0 {
		t.Errorf("prod's 1.0.0 slot has no replicas: not kept warm")
	}
	out = g.cli(4, "db", "contract", "prod")
	if !strings.Contains(out, "needs the old schema") {
		t.Errorf("contract while 1.0.0 is warm: %s", out)
	}
	out = g.cli(0, "db", "contract", "prod", "--force")
	if st := status("prod"); st.Active != "" {
		t.Errorf("prod's active migration after the contract: %q\n%s", st.Active, out)
	}
	out = g.cli(4, "rollback", "prod")
	if !strings.Contains(out, "schema") {
		t.Errorf("rollback across the contract: %s; want the schema gate's refusal", out)
	}
	if got, want := liveImage(t, c, ns+"-prod"), internal(ns+"-prod", v11); got != want {
		t.Errorf("a refused rollback changed prod: runs %s", got)
	}
	out = g.cli(0, "rollback", "prod", "--force")
	if got, want := liveImage(t, c, ns+"-prod"), internal(ns+"-prod", v10); got != want {
		t.Errorf("prod runs %s after the forced rollback, want %s\n%s", got, want, out)
	}
	if hasPrice("prod") {
		t.Errorf("the price column is on prod after the forced rollback restored the snapshot\n%s", out)
	}
	if err := db("prod").QueryRow(`SELECT name FROM items`).Scan(&name); err != nil || name != "written on prod" {
		t.Errorf("prod's row after the forced rollback: %q, %v", name, err)
	}
}

// migrationArtifacts puts each release's SQL migrations (path under
// db/migrations → SQL) in the artifact store of a state directory, as a
// build leaves them, and returns them as release artifacts per version.
func migrationArtifacts(t *testing.T, migrations map[string]map[string]string) func(data string) map[string]map[string]gantry.Artifact {
	return func(data string) map[string]map[string]gantry.Artifact {
		t.Helper()
		arts, err := artifact.NewLocal(filepath.Join(data, "artifacts"))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]map[string]gantry.Artifact{}
		for version, files := range migrations {
			src := t.TempDir()
			for p, text := range files {
				full := filepath.Join(src, "db", "migrations", p)
				os.MkdirAll(filepath.Dir(full), 0o755)
				if err := os.WriteFile(full, []byte(text+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var buf bytes.Buffer
			if err := tarball.Write(&buf, src, []string{"db/migrations"}); err != nil {
				t.Fatal(err)
			}
			digest, size, err := arts.Put(context.Background(), &buf)
			if err != nil {
				t.Fatal(err)
			}
			out[version] = map[string]gantry.Artifact{gantry.MigrationsArtifact: {Kind: gantry.ArtifactTarball, Digest: digest, Size: size}}
		}
		return out
	}
}

// pushImage pushes a small OCI image (a config and one layer that name
// version) to repo (host/path) of a registry over its HTTP API, and
// returns it as repo@sha256:….
func pushImage(t *testing.T, repo, version string) string {
	t.Helper()
	host, path, _ := strings.Cut(repo, "/")
	blob := func(b []byte) map[string]any {
		digest := registry.Digest(b)
		resp, err := http.Post("http://"+host+"/v2/"+path+"/blobs/uploads/", "application/octet-stream", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if !strings.HasPrefix(loc, "http") {
			loc = "http://" + host + loc
		}
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		req, _ := http.NewRequest(http.MethodPut, loc+sep+"digest="+digest, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("push blob to %s: %s %s", repo, resp.Status, body)
		}
		return map[string]any{"digest": digest, "size": len(b)}
	}
	layer := blob([]byte("layer of shop " + version))
	layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
	config := blob([]byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{"Labels":{"version":%q}},"rootfs":{"type":"layers","diff_ids":[%q]}}`, version, layer["digest"])))
	config["mediaType"] = "application/vnd.oci.image.config.v1+json"
	manifest, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config, "layers": []any{layer}})
	req, _ := http.NewRequest(http.MethodPut, "http://"+host+"/v2/"+path+"/manifests/"+version, bytes.NewReader(manifest))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push manifest to %s: %s %s", repo, resp.Status, body)
	}
	return repo + "@" + registry.Digest(manifest)
}

// watchFirst watches the Deployments of ns from now on and, the first time
// one runs image, calls check at that moment; done stops the watch and
// says whether it was seen.
func watchFirst(t *testing.T, c *k8stest.Cluster, ns, image string, check func()) (done func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	wi, err := c.Client.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan bool, 1)
	go func() {
		defer wi.Stop()
		for {
			select {
			case <-ctx.Done():
				seen <- false
				return
			case ev, ok := <-wi.ResultChan():
				if !ok {
					seen <- false
					return
				}
				if d, ok := ev.Object.(*appsv1.Deployment); ok && d.Spec.Template.Spec.Containers[0].Image == image {
					check()
					seen <- true
					return
				}
			}
		}
	}()
	return func() bool {
		select {
		case ok := <-seen:
			return ok
		case <-time.After(5 * time.Second):
			cancel()
			return <-seen
		}
	}
}
