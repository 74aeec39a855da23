package dbchange

// PartialName is partialName, for the tests of package dbchange_test.
var PartialName = partialName
