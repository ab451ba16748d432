// The Vercel AI SDK (`ai`, `@ai-sdk/openai`) against the service: node vercel_ai.mjs CASE BASE_URL
// (BASE_URL also from SERVICE_URL). Prints one JSON object for the Python test to check.
// Telemetry is off unless a call asks for it (`experimental_telemetry`); none does.
import { createOpenAI } from '@ai-sdk/openai';
import { generateObject, generateText, hasToolCall, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';

const [kase, base = process.env.SERVICE_URL] = process.argv.slice(2);
globalThis.AI_SDK_LOG_WARNINGS = false; // warnings are returned and checked, not printed
const openai = createOpenAI({ baseURL: `${base}/v1`, apiKey: process.env.SERVICE_KEY ?? 'unused' });
const model = (api) => (api === 'responses' ? openai.responses('offline') : openai.chat('offline'));

const getWeather = tool({
  description: 'Current weather in a city',
  inputSchema: z.object({ city: z.string() }),
});
const calls = (result) => result.toolCalls.map((c) => ({ name: c.toolName, input: c.input }));

const cases = {
  // A client tool forced with toolChoice 'required': the SDK throws AI_ToolChoiceViolationError
  // unless the answer is a call of one of its tools.
  async required(api) {
    const result = await generateText({
      model: model(api),
      prompt: 'What is 17 * 23? And the weather in Oslo?',
      tools: { get_weather: getWeather },
      toolChoice: 'required',
    });
    return { finishReason: result.finishReason, calls: calls(result), text: result.text, warnings: result.warnings };
  },

  // An agent loop: the SDK runs its own tool, then the model, still obliged to call a tool,
  // calls the one without `execute` (the SDK's "answer tool" pattern), which ends the loop.
  async loop(api) {
    const looked = [];
    const result = await generateText({
      model: model(api),
      prompt: 'What is the weather in Oslo?',
      tools: {
        get_weather: tool({
          description: 'Current weather in a city',
          inputSchema: z.object({ city: z.string() }),
          execute: async ({ city }) => { looked.push(city); return `Sunny in ${city}, 21 C`; },
        }),
        answer: tool({
          description: 'The final answer to the user',
          inputSchema: z.object({ text: z.string() }),
        }),
      },
      toolChoice: 'required',
      stopWhen: [hasToolCall('answer'), stepCountIs(4)],
    });
    return {
      looked,
      steps: result.steps.map((step) => step.toolCalls.map((c) => c.toolName)),
      final: calls(result),
      secondRequest: result.steps[1]?.request.body ?? null,
    };
  },

  // Structured output: the SDK validates the JSON against the zod schema (or throws).
  async object(api) {
    const result = await generateObject({
      model: model(api),
      schema: z.object({
        expression: z.string(),
        value: z.number(),
        confidence: z.enum(['low', 'high']),
        steps: z.array(z.string()).min(1),
      }),
      prompt: 'What is 17 * 23?',
    });
    return { object: result.object, finishReason: result.finishReason, warnings: result.warnings };
  },

  // A streamed tool call: its parts, in order (a `text-*` part would be an empty text part).
  async stream(api) {
    const result = streamText({
      model: model(api),
      prompt: 'What is the weather in Oslo?',
      tools: { get_weather: getWeather },
      toolChoice: 'required',
    });
    const parts = [];
    for await (const part of result.fullStream) parts.push(part);
    return {
      types: parts.map((p) => p.type),
      calls: (await result.toolCalls).map((c) => ({ name: c.toolName, input: c.input })),
      content: (await result.content).map((p) => p.type),
      finishReason: await result.finishReason,
    };
  },

  // A conversation on the Responses API with the default `store`: earlier turns are sent as
  // `item_reference` items naming what the service returned.
  async conversation() {
    const messages = [{ role: 'user', content: 'echo apricot' }];
    const first = await generateText({ model: openai.responses('offline'), messages });
    messages.push(...first.response.messages, { role: 'user', content: 'What did I say first?' });
    const second = await generateText({ model: openai.responses('offline'), messages });
    return {
      first: first.text,
      firstItem: first.response.messages[0].content[0].providerOptions.openai.itemId,
      second: second.text,
      sent: second.request.body.input,
    };
  },
};

if (!(kase in cases)) throw new Error(`unknown case ${kase}; one of ${Object.keys(cases)}`);
process.stdout.write(JSON.stringify(await cases[kase](process.argv[4] ?? 'chat')));
