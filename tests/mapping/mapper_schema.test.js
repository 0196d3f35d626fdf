'use strict';
// mappers/mapper.schema.json (the editor schema of the mapping language) must accept every shipped
// mapper and reject the mistakes it claims to catch. Run: node --test tests/mapping/mapper_schema.test.js
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const Ajv = require('../partner/node_modules/ajv');

const repo = path.resolve(__dirname, '..', '..');
const schema = JSON.parse(fs.readFileSync(path.join(repo, 'mappers', 'mapper.schema.json'), 'utf8'));
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);

// Mapper files may hold // and /* */ comments and trailing commas; strip them outside strings.
function parseMapper(text) {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
    } else if (c === '/' && text[i + 1] === '*') {
      i = text.indexOf('*/', i + 2) + 1;
    } else {
      out += c;
    }
  }
  return JSON.parse(out.replace(/,(\s*[}\]])/g, '$1'));
}

const mapperDirs = fs.readdirSync(path.join(repo, 'mappers'), { withFileTypes: true }).filter((d) => d.isDirectory());
const files = mapperDirs.flatMap((d) =>
  fs.readdirSync(path.join(repo, 'mappers', d.name)).filter((f) => f.endsWith('.mapper.json')).map((f) => path.join('mappers', d.name, f)));

test('there are mappers to check', () => assert.ok(files.length >= 8));

for (const file of files) {
  test(`${file} conforms to mappers/mapper.schema.json`, () => {
    const ok = validate(parseMapper(fs.readFileSync(path.join(repo, file), 'utf8')));
    assert.ok(ok, JSON.stringify(validate.errors?.slice(0, 5), null, 1));
  });
}

test('the schema rejects typical mistakes', () => {
  const base = () => parseMapper(fs.readFileSync(path.join(repo, 'mappers/clinic-v1/harm_reduction_service.mapper.json'), 'utf8'));
  const broken = [
    (m) => { m.format = 'gw-mapper/2'; },
    (m) => { m.resources[0].template.id = 'x'; },
    (m) => { m.resources[0].forEach = '$.service..items'; },
    (m) => { m.resources[0].template.code = { $lowercase: '$item.kind' }; },
    (m) => { m.resources[0].template.code = { $lookup: 'item', valeu: '$item.kind' }; },
    (m) => { m.resources[0].template.status = { $if: '$item.kind', is: 'text', then: 'final' }; },
    (m) => { m.resources[0].template.note = []; },
    (m) => { m.valueMaps.item.entires = {}; },
  ];
  for (const [i, breakIt] of broken.entries()) {
    const m = base();
    breakIt(m);
    assert.strictEqual(validate(m), false, `mistake ${i} was accepted`);
  }
});

test('comments and trailing commas are allowed as the gateway allows them', () => {
  const m = parseMapper('{"format": "gw-mapper/1", // version\n "recordType": "x", /* c */ "resources": [{"resourceType": "Basic", ' +
    '"sourceId": "$.a.id", "identifierKind": "a", "template": {"identifier": [{"system": "$identifierSystem", "value": "$sourceId"}],},},],}');
  assert.ok(validate(m), JSON.stringify(validate.errors));
});

// mappers/csv-mapper.schema.json, the editor schema of CSV input mappers (also checked with RapidJSON
// in csv_mapper_schema_test.cpp): draft-07 validators must read it the same way.
const csvSchema = JSON.parse(fs.readFileSync(path.join(repo, 'mappers', 'csv-mapper.schema.json'), 'utf8'));
const validateCsv = new Ajv({ allErrors: true, strict: false }).compile(csvSchema);
const csvFiles = mapperDirs.flatMap((d) =>
  fs.readdirSync(path.join(repo, 'mappers', d.name)).filter((f) => f.endsWith('.csv-mapper.json')).map((f) => path.join('mappers', d.name, f)));

test('there are CSV mappers to check', () => assert.ok(csvFiles.length >= 1));

for (const file of csvFiles) {
  test(`${file} conforms to mappers/csv-mapper.schema.json`, () => {
    const ok = validateCsv(parseMapper(fs.readFileSync(path.join(repo, file), 'utf8')));
    assert.ok(ok, JSON.stringify(validateCsv.errors?.slice(0, 5), null, 1));
  });
}

test('the CSV mapper schema rejects typical mistakes', () => {
  const base = () => parseMapper(fs.readFileSync(path.join(repo, 'mappers/harm-reduction-weekly/weekly-export.csv-mapper.json'), 'utf8'));
  const broken = [
    (m) => { m.format = 'gw-mapper/1'; },
    (m) => { m.columns['Client ID'] = 'Client ID'; },
    (m) => { m.dialect.delimiter = ';;'; },
    (m) => { m.record.patient.mrn = '$.client_id.x'; },
    (m) => { m.record.patient.ref = { $reference: 'Patient', sourceId: '$.client_id' }; },
    (m) => { m.record.service.date = { $date: '$.visit_date', timezone: 'UTC' }; },
    (m) => { m.record.service.date = { $date: '$.visit_date', formats: [] }; },
    (m) => { m.record.recorded_at.timezone = '+5:30'; },
    (m) => { m.record.service.site = { $lowercase: '$.site' }; },
  ];
  for (const [i, breakIt] of broken.entries()) {
    const m = base();
    breakIt(m);
    assert.strictEqual(validateCsv(m), false, `mistake ${i} was accepted`);
  }
});

test('the mapper schema knows date formats and time zones', () => {
  const m = parseMapper(fs.readFileSync(path.join(repo, 'mappers/clinic-v1/harm_reduction_service.mapper.json'), 'utf8'));
  m.resources[0].template.effectiveDateTime = { $dateTime: '$.recorded_at', formats: ['MM/DD/YYYY HH:mm', 'ISO'], timezone: 'America/New_York' };
  assert.ok(validate(m), JSON.stringify(validate.errors?.slice(0, 3)));
  m.resources[0].template.effectiveDateTime = { $date: '$.service.date', timezone: 'America/New_York' };
  assert.strictEqual(validate(m), false);
});
