// Package manifest decodes gantry.yml: it parses the YAML, rejects anything
// it does not know (unknown keys, wrong types, duplicate keys, bad values),
// reports every problem with file, line, column and key path, and fills the
// defaults, producing a *gantry.Manifest.
//
// It must not read files, talk to a server or know how the manifest is used:
// callers hand it bytes and a file name for messages. It walks yaml.Node trees
// itself instead of unmarshalling into structs, because that is the only way
// to be strict and to point at the exact line of every mistake.
package manifest
