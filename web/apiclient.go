package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/gantry-dev/gantry"
)

// recorder is a ResponseWriter that keeps an in-process API answer and, for
// streamed answers, hands every complete line to onLine as it arrives.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	onLine func([]byte)
	line   []byte
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body.Write(p)
	if r.onLine == nil || r.status >= 300 {
		return len(p), nil
	}
	r.line = append(r.line, p...)
	for {
		i := bytes.IndexByte(r.line, '\n')
		if i < 0 {
			break
		}
		r.onLine(r.line[:i])
		r.line = r.line[i+1:]
	}
	return len(p), nil
}

// Flush makes the recorder a streaming writer for the API's NDJSON answers.
func (r *recorder) Flush() {}

// errorBody is the API's error shape.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// call runs one request through the API handler as id, the signed-in user,
// so that the API's access control and audit trail apply unchanged.
func (d *Dashboard) call(ctx context.Context, id *gantry.Identity, method, path string, body any, rec *recorder) error {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(gantry.WithIdentity(ctx, id), method, path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	d.API.ServeHTTP(rec, req)
	if rec.status >= 300 {
		var eb errorBody
		if json.Unmarshal(rec.body.Bytes(), &eb) != nil || eb.Code == "" {
			return gantry.Errorf(gantry.EINTERNAL, "API answered %d: %s", rec.status, strings.TrimSpace(rec.body.String()))
		}
		return &gantry.Error{Code: eb.Code, Message: eb.Error}
	}
	return nil
}

// get decodes the JSON answer of GET path into out.
func (d *Dashboard) get(ctx context.Context, id *gantry.Identity, path string, out any) error {
	rec := newRecorder()
	if err := d.call(ctx, id, http.MethodGet, path, nil, rec); err != nil {
		return err
	}
	if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// do sends a request whose answer is a plain JSON object.
func (d *Dashboard) do(ctx context.Context, id *gantry.Identity, method, path string, body any) error {
	return d.call(ctx, id, method, path, body, newRecorder())
}

// streamLine is one line of the API's streamed answers.
type streamLine struct {
	Event  *gantry.Event   `json:"event"`
	Result json.RawMessage `json:"result"`
	Error  *errorBody      `json:"error"`
}

// started is what an operation said first: the deployment it runs (from
// its first event, or its result) or the error that stopped it.
type started struct {
	deploymentID int64
	err          error
}

// start runs a streamed operation (deploy, promote, rollback) in the
// background and returns as soon as its deployment is known, so that the
// browser can watch it run. The operation goes on after the page has gone.
func (d *Dashboard) start(id *gantry.Identity, path string, body any) started {
	first := make(chan started, 1)
	report := func(s started) {
		select {
		case first <- s:
		default:
		}
	}
	go func() {
		rec := newRecorder()
		rec.onLine = func(b []byte) {
			var l streamLine
			if json.Unmarshal(b, &l) != nil {
				return
			}
			switch {
			case l.Event != nil && l.Event.DeploymentID > 0:
				report(started{deploymentID: l.Event.DeploymentID})
			case l.Error != nil:
				var dep gantry.Deployment
				_ = json.Unmarshal(l.Result, &dep)
				report(started{deploymentID: dep.ID, err: &gantry.Error{Code: l.Error.Code, Message: l.Error.Error}})
			case len(l.Result) > 0:
				var dep gantry.Deployment
				_ = json.Unmarshal(l.Result, &dep)
				report(started{deploymentID: dep.ID})
			}
		}
		err := d.call(context.Background(), id, http.MethodPost, path, body, rec)
		if err == nil {
			// An answer without progress comes whole, not line by line;
			// for a streamed one this repeats the last line, harmlessly.
			rec.onLine(rec.body.Bytes())
		}
		report(started{err: err})
	}()
	return <-first
}
