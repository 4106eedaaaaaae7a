'use strict';
// The `save` sub-action: a save at the point of the job where it stands;
// `cache-from` names the base to compare with, as `regcache save` takes it.

const core = require('./lib/core');
const { regcache } = require('./lib/install');
const { save } = require('./lib/save');

core.runStep(async () => {
  save(await regcache(), core.lines('cache-from'));
});
