package gantry

import (
	"path/filepath"
	"strings"
)

// PersistRoot is where a server whose data directory is dataDir keeps the
// environments' persistent directories (services.<service>.persist).
func PersistRoot(dataDir string) string {
	return filepath.Join(dataDir, "persist")
}

// PersistDir is the directory of the persistent directory name of the
// environment whose DataID is dataID: <root>/<dataID>/<name>. Both slots
// and every release of the environment use it; a rename keeps it.
func PersistDir(root, dataID, name string) string {
	return filepath.Join(root, dataID, name)
}

// PersistVar is the variable that tells an instance where its persistent
// directory name is: GANTRY_PERSIST_<NAME>.
func PersistVar(name string) string {
	return "GANTRY_PERSIST_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}
