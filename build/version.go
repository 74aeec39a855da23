package build

import (
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/lazyre"
)

// Version schemes.
const (
	SchemeSemver = "semver"
	SchemeCalver = "calver"
)

var (
	// semverRE is Semantic Versioning 2.0: no leading zeros in numbers or in
	// numeric pre-release identifiers.
	semverRE = lazyre.New(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
		`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
		`(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)
	// calverRE is YY.MM.R with optional lowercase hotfix letters: 16.03.1b
	// is the first hotfix of release 16.03.1.
	calverRE = lazyre.New(`^(\d{2})\.(0[1-9]|1[0-2])\.(0|[1-9]\d*)([a-z]*)$`)
)

// ValidSemver reports whether v is a semantic version X.Y.Z[-pre][+meta].
func ValidSemver(v string) bool { return semverRE.MatchString(v) }

// ValidCalver reports whether v is a calendar version YY.MM.R[letters].
func ValidCalver(v string) bool { return calverRE.MatchString(v) }

// DeriveVersion returns a release's version under scheme ("semver" when
// empty).
//
// semver: the override, else the VERSION file of the commit, else the highest
// vX.Y.Z tag among tags (the tags that point at the commit), with the "v"
// stripped.
//
// calver: the override, else the last path element of ref when it is a
// version (hotfix/16.03.1b gives 16.03.1b), else the highest YY.MM.R[x] tag
// among tags, else the VERSION file. There is deliberately no fallback to a
// version made from the clock: R counts releases within a month and a hotfix
// letter names what is being patched, and neither can be guessed; a wrong
// guess would silently give two different builds the same version. now only
// guards against typos: a calver more than a month in the future is refused.
//
// Every error says what was tried, so the user knows what to add.
func DeriveVersion(scheme, override, versionFile string, tags []string, ref string, now time.Time) (string, error) {
	override = strings.TrimSpace(override)
	versionFile = strings.TrimSpace(versionFile)
	switch scheme {
	case "", SchemeSemver:
		return deriveSemver(override, versionFile, tags)
	case SchemeCalver:
		v, err := deriveCalver(override, versionFile, tags, ref)
		if err != nil {
			return "", err
		}
		if err := calverNotFuture(v, now); err != nil {
			return "", err
		}
		return v, nil
	default:
		return "", gantry.Errorf(gantry.EINVALID, "version scheme %q: want semver or calver", scheme)
	}
}

func deriveSemver(override, versionFile string, tags []string) (string, error) {
	if override != "" {
		v := strings.TrimPrefix(override, "v")
		if !ValidSemver(v) {
			return "", gantry.Errorf(gantry.EINVALID, "version %q is not a semantic version X.Y.Z[-pre][+meta]", override)
		}
		return v, nil
	}
	if versionFile != "" {
		v := strings.TrimPrefix(versionFile, "v")
		if !ValidSemver(v) {
			return "", gantry.Errorf(gantry.EINVALID, "VERSION file holds %q, which is not a semantic version X.Y.Z[-pre][+meta]", versionFile)
		}
		return v, nil
	}
	var found []string
	for _, t := range tags {
		if v, ok := strings.CutPrefix(t, "v"); ok && ValidSemver(v) {
			found = append(found, v)
		}
	}
	if len(found) > 0 {
		sort.Slice(found, func(i, j int) bool { return semverLess(found[j], found[i]) })
		return found[0], nil
	}
	return "", gantry.Errorf(gantry.EINVALID,
		"no version for the semver scheme: no --version given, no VERSION file in the commit, and no vX.Y.Z tag points at it (tags: %s); pass --version, commit a VERSION file, or tag the commit",
		listOrNone(tags))
}

func deriveCalver(override, versionFile string, tags []string, ref string) (string, error) {
	if override != "" {
		if !ValidCalver(override) {
			return "", gantry.Errorf(gantry.EINVALID, "version %q is not a calendar version YY.MM.R with optional lowercase hotfix letters (16.03.1b)", override)
		}
		return override, nil
	}
	if ref != "" {
		if last := path.Base(ref); ValidCalver(last) {
			return last, nil
		}
	}
	var found []string
	for _, t := range tags {
		if ValidCalver(t) {
			found = append(found, t)
		}
	}
	if len(found) > 0 {
		sort.Slice(found, func(i, j int) bool { return calverLess(found[j], found[i]) })
		return found[0], nil
	}
	if versionFile != "" {
		if !ValidCalver(versionFile) {
			return "", gantry.Errorf(gantry.EINVALID, "VERSION file holds %q, which is not a calendar version YY.MM.R[x] (and ref %q and tags %s give none)", versionFile, ref, listOrNone(tags))
		}
		return versionFile, nil
	}
	return "", gantry.Errorf(gantry.EINVALID,
		"no version for the calver scheme: no --version given, ref %q does not end in YY.MM.R[x] (like hotfix/16.03.1b), no such tag points at the commit (tags: %s), and there is no VERSION file; pass --version, build from a releases/YY.MM.R or hotfix/YY.MM.Rx branch, or tag the commit",
		ref, listOrNone(tags))
}

// calverNotFuture refuses a version dated more than a month after now: one
// month of slack absorbs time zones around the turn of a month.
func calverNotFuture(v string, now time.Time) error {
	if now.IsZero() {
		return nil
	}
	m := calverRE.FindStringSubmatch(v)
	yy, _ := strconv.Atoi(m[1])
	mm, _ := strconv.Atoi(m[2])
	limit := now.UTC().AddDate(0, 1, 0)
	if yy*12+mm > (limit.Year()%100)*12+int(limit.Month()) {
		return gantry.Errorf(gantry.EINVALID, "calendar version %q is dated 20%02d-%02d, after today (%s): a typo?", v, yy, mm, now.UTC().Format("2006-01-02"))
	}
	return nil
}

func listOrNone(tags []string) string {
	if len(tags) == 0 {
		return "none"
	}
	return strings.Join(tags, ", ")
}

// semverLess orders by precedence (a release ranks above its pre-releases);
// ties, such as versions differing only in build metadata, fall back to the
// string so that the order is total.
func semverLess(a, b string) bool {
	ma, mb := semverRE.FindStringSubmatch(a), semverRE.FindStringSubmatch(b)
	for i := 1; i <= 3; i++ {
		if c := cmpNum(ma[i], mb[i]); c != 0 {
			return c < 0
		}
	}
	if pa, pb := ma[4], mb[4]; pa != pb {
		switch {
		case pa == "":
			return false
		case pb == "":
			return true
		}
		return cmpPrerelease(pa, pb) < 0
	}
	return a < b
}

func cmpPrerelease(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		an, aerr := strconv.ParseUint(as[i], 10, 64)
		bn, berr := strconv.ParseUint(bs[i], 10, 64)
		switch {
		case aerr == nil && berr == nil:
			if an != bn {
				return cmpInt(an, bn)
			}
		case aerr == nil:
			return -1 // numeric identifiers rank below alphanumeric ones
		case berr == nil:
			return 1
		default:
			if c := strings.Compare(as[i], bs[i]); c != 0 {
				return c
			}
		}
	}
	return cmpInt(uint64(len(as)), uint64(len(bs)))
}

func calverLess(a, b string) bool {
	ma, mb := calverRE.FindStringSubmatch(a), calverRE.FindStringSubmatch(b)
	for i := 1; i <= 3; i++ {
		if c := cmpNum(ma[i], mb[i]); c != 0 {
			return c < 0
		}
	}
	// "" < "a" < "b" < "z" < "aa": shorter letter runs are earlier hotfixes.
	if len(ma[4]) != len(mb[4]) {
		return len(ma[4]) < len(mb[4])
	}
	return ma[4] < mb[4]
}

// cmpNum compares decimal strings of any length without overflow.
func cmpNum(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return cmpInt(uint64(len(a)), uint64(len(b)))
	}
	return strings.Compare(a, b)
}

func cmpInt(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// shortSHA abbreviates a commit id for messages.
func shortSHA(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
