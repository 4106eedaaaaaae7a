'use strict';
// The `restore` sub-action: the main step's restore, with no save after it.

const core = require('./lib/core');
const { regcache } = require('./lib/install');
const { restore } = require('./lib/restore');

core.runStep(async () => {
  restore(await regcache());
});
