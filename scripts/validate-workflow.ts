/**
 * Check GitHub Actions workflows with GitHub's own parser
 * (@actions/workflow-parser): schema, expressions and the job graph. Prints
 * one JSON object a file, {file, errors, jobs}, and exits 1 when any file has
 * an error. Run under tsx (`npx tsx scripts/validate-workflow.ts <file>...`):
 * the parser imports its JSON schema without an import attribute, which plain
 * Node refuses.
 */
import { readFileSync } from 'node:fs';
import { convertWorkflowTemplate, NoOperationTraceWriter, parseWorkflow } from '@actions/workflow-parser';

export async function validateWorkflow(file: string, content = readFileSync(file, 'utf8')): Promise<{ file: string; errors: string[]; jobs: string[] }> {
  const parsed = parseWorkflow({ name: file, content }, new NoOperationTraceWriter());
  const parseErrors = parsed.context.errors.getErrors().map((e) => e.message);
  if (parseErrors.length || !parsed.value) return { file, errors: parseErrors.length ? parseErrors : ['the parser returned no workflow'], jobs: [] };
  const template = await convertWorkflowTemplate(parsed.context, parsed.value);
  const errors = [...(template.errors ?? []).map((e) => e.Message), ...parsed.context.errors.getErrors().map((e) => e.message)];
  return { file, errors, jobs: (template.jobs ?? []).map((j) => j.id.value) };
}

const files = process.argv.slice(2);
if (files.length === 0) {
  process.stderr.write('usage: tsx scripts/validate-workflow.ts <workflow.yml>...\n');
  process.exitCode = 2;
} else {
  let bad = 0;
  for (const file of files) {
    const result = await validateWorkflow(file);
    if (result.errors.length) bad += 1;
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
  process.exitCode = bad ? 1 : 0;
}
