package kubernetes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
	"k8s.io/client-go/rest"
)

var _ gantry.SlotPreviewer = (*Driver)(nil)

// OpenPreview implements gantry.SlotPreviewer through the API server's
// service proxy (/api/v1/namespaces/NS/services/NAME:80/proxy/PATH): the
// only address Gantry is sure to reach is the API server's, wherever it
// runs, and the API server reaches the pods the preview Service selects.
// The preview is the slot's hosts' Service (web, or the first http service
// by name), as the preview hosts' routing object serves it.
//
// The returned URL is a forwarder on 127.0.0.1 that adds Gantry's
// credentials, so that a verify command needs none. It only ever reaches
// that Service: a request's path is cleaned before it is appended to the
// proxy's path (no "..", however encoded), and its own Authorization
// header is dropped (the API server would take it for the caller's; it
// removes Gantry's own before proxying, so the app never sees it).
//
// The preview Service must select ref.Slot: checks meant for a candidate
// never reach the live slot.
func (d *Driver) OpenPreview(ctx context.Context, ref gantry.SlotRef) (*gantry.SlotPreview, error) {
	deps, err := d.slotDeployments(ctx, ref)
	if err != nil {
		return nil, err
	}
	var web []string
	for _, dep := range deps {
		if dep.Annotations[AnnotationHTTP] == "true" {
			web = append(web, dep.Labels[LabelService])
		}
	}
	svc := hostService(web)
	if svc == "" {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "kubernetes: slot %s of %s/%s runs no http service: nothing to preview", ref.Slot, ref.App, ref.Env)
	}
	ns := d.namespace(ref.Runtime, ref.App, ref.Env)
	name := previewName(ref.App, svc)
	cur, err := d.Client.services(ns).Get(ctx, name)
	if err != nil {
		return nil, apiError(err, "read preview service %s/%s", ns, name)
	}
	if got := cur.Spec.Selector[LabelSlot]; got != labelValue(ref.Slot) {
		return nil, gantry.Errorf(gantry.ECONFLICT, "kubernetes: preview service %s/%s selects slot %q, not the candidate %s", ns, name, got, ref.Slot)
	}
	base, client, err := d.Client.serviceProxy(ns, name, servicePort)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("kubernetes: preview forwarder: %w", err)
	}
	srv := &http.Server{
		Handler:           previewForwarder(base, client.Transport, d.logger()),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(d.logger().Handler(), slog.LevelWarn),
	}
	go func() { _ = srv.Serve(ln) }()
	return &gantry.SlotPreview{
		URL:   "http://" + ln.Addr().String(),
		Via:   fmt.Sprintf("the API server's service proxy to Service %s/%s (slot %s)", ns, name, ref.Slot),
		Close: srv.Close,
	}, nil
}

// serviceProxy is the URL of the API server's proxy to port of a Service,
// and the HTTP client that carries the driver's credentials there.
func (c *Client) serviceProxy(ns, name string, port int) (*url.URL, *http.Client, error) {
	rc, ok := c.core.(*rest.RESTClient)
	if !ok || rc.Client == nil {
		return nil, nil, gantry.Errorf(gantry.EINTERNAL, "kubernetes: the core client cannot proxy")
	}
	u := rc.Get().AbsPath("/api/v1/namespaces", ns, "services", name+":"+strconv.Itoa(port), "proxy").URL()
	u.RawQuery = ""
	return u, rc.Client, nil
}

// previewForwarder sends each request to base (the service proxy's URL)
// with its cleaned path appended.
func previewForwarder(base *url.URL, rt http.RoundTripper, log *slog.Logger) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			p := previewPath(pr.In.URL.Path)
			pr.Out.URL.Scheme, pr.Out.URL.Host = base.Scheme, base.Host
			pr.Out.URL.Path, pr.Out.URL.RawPath = strings.TrimRight(base.Path, "/")+p, ""
			pr.Out.Host = base.Host
			pr.Out.Header.Del("Authorization")
			pr.Out.Header.Del("Proxy-Authorization")
		},
		Transport:      rt,
		ModifyResponse: unrewrite(strings.TrimRight(base.Path, "/")),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			log.Warn("kubernetes: preview forwarder", "path", r.URL.Path, "error", err)
			http.Error(w, "gantry: the API server's service proxy did not answer: "+err.Error(), http.StatusBadGateway)
		},
	}
}

// unrewrite undoes what the API server's proxy does to an answer so that
// links work through it: in a text/html body (not compressed) and in a
// Location header, the proxy's path before an absolute path of the app.
// A check then sees the app's own answer.
func unrewrite(prefix string) func(*http.Response) error {
	return func(resp *http.Response) error {
		if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, prefix+"/") {
			resp.Header.Set("Location", strings.TrimPrefix(loc, prefix))
		}
		ct := resp.Header.Get("Content-Type")
		if !strings.HasPrefix(ct, "text/html") || resp.Header.Get("Content-Encoding") != "" {
			return nil
		}
		orig := resp.Body
		body, err := io.ReadAll(io.LimitReader(orig, maxRewrite+1))
		if err != nil {
			return err
		}
		if len(body) > maxRewrite {
			resp.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(body), orig), orig}
			return nil
		}
		orig.Close()
		body = bytes.ReplaceAll(body, []byte(prefix+"/"), []byte("/"))
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
}

// maxRewrite bounds the HTML answer unrewrite reads into memory; a larger
// one is passed on as the API server sent it.
const maxRewrite = 8 << 20

// previewPath cleans a request path so that, appended to the service
// proxy's path, it stays under it; a trailing slash is kept (it may matter
// to the app).
func previewPath(p string) string {
	clean := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean
}
