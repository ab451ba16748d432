// The openai Node SDK against the service: node openai_sdk.mjs CASE BASE_URL (BASE_URL also
// from SERVICE_URL). Prints one JSON object for the Python test to check.
import OpenAI from 'openai';

const [kase, base = process.env.SERVICE_URL] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: process.env.SERVICE_KEY ?? 'unused', maxRetries: 0 });

const getWeather = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

const cases = {
  // A client tool forced with tool_choice 'required', as JSON and streamed.
  async required() {
    const request = {
      model: 'offline',
      messages: [{ role: 'user', content: 'What is 17 * 23? And the weather in Oslo?' }],
      tools: [getWeather],
      tool_choice: 'required',
    };
    const answer = await client.chat.completions.create(request);
    const [choice] = answer.choices;
    const stream = await client.chat.completions.create({ ...request, stream: true });
    const deltas = [];
    for await (const chunk of stream) if (chunk.choices.length) deltas.push(chunk.choices[0]);
    return {
      finishReason: choice.finish_reason,
      content: choice.message.content,
      calls: (choice.message.tool_calls ?? []).map((c) => [c.function.name, JSON.parse(c.function.arguments)]),
      streamed: {
        contents: deltas.map((d) => d.delta.content),
        names: deltas.flatMap((d) => (d.delta.tool_calls ?? []).map((c) => c.function?.name).filter(Boolean)),
        arguments: deltas.flatMap((d) => (d.delta.tool_calls ?? []).map((c) => c.function?.arguments ?? '')).join(''),
        finishReason: deltas.at(-1).finish_reason,
      },
    };
  },

  // The legacy completions API, as JSON and streamed.
  async completions() {
    const answer = await client.completions.create({ model: 'offline', prompt: 'echo apricot', max_tokens: 16 });
    const stream = await client.completions.create({ model: 'offline', prompt: 'echo apricot', stream: true });
    const pieces = [];
    for await (const chunk of stream) pieces.push(...chunk.choices.map((c) => c.text));
    return {
      object: answer.object,
      text: answer.choices[0].text,
      finishReason: answer.choices[0].finish_reason,
      usage: answer.usage,
      streamed: pieces.join(''),
    };
  },
};

if (!(kase in cases)) throw new Error(`unknown case ${kase}; one of ${Object.keys(cases)}`);
process.stdout.write(JSON.stringify(await cases[kase]()));
