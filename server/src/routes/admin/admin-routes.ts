import {
  accessDecisionSchema,
  accessRequestPageSchema,
  accessRequestViewSchema,
  grantPageSchema,
  grantViewSchema,
  limitOf,
  newUserResultSchema,
  passwordResetSchema,
  stewardHospitalsSchema,
  newGrantSchema,
  pageRequestSchema,
  projectPageSchema,
  projectViewSchema,
  userPageSchema,
  userRoleSchema,
  userViewSchema,
} from '@medlake/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { actorOf } from '../../caller.ts';
import { requireCaller } from '../../http/authenticate.ts';
import type { Platform } from '../../platform.ts';
import {
  assignSteward,
  changeRole,
  createUserWithPassword,
  findUser,
  pageUsers,
  resetPassword,
  setUserDisabled,
} from '../../use-cases/accounts/manage-users.ts';
import { decideAccessRequest, pageAccessRequests } from '../../use-cases/access/access-requests.ts';
import { createProject, pageProjects, setProjectMember } from '../../use-cases/access/projects.ts';
import { grantDatasetAccess, pageGrants, revokeGrant } from '../../use-cases/manage-access.ts';
import { presentUser } from '../accounts/present-account.ts';
import { presentAccessRequest, presentGrant, presentProject } from './present-access.ts';
import { errorResponses } from '../../http/error-responses.ts';

const errors = errorResponses(400, 401, 403, 404, 409);
const userParams = z.object({ id: z.uuid() });

/**
 * Administration: users and roles, stewards' hospitals, grants, projects and access requests.
 * Admins only (route rules in policy.ts); every change is audited by its use-case.
 */
export function adminRoutes(platform: Platform): FastifyPluginAsyncZod {
  return async (app) => {
    const userById = (id: string) => findUser(platform, id);

    app.get(
      '/v1/admin/users',
      {
        schema: {
          summary: 'Users by e-mail, a page at a time; searched by e-mail or name, or by role',
          tags: ['admin'],
          querystring: pageRequestSchema.extend({
            search: z.string().max(200).optional(),
            role: userRoleSchema.optional(),
          }),
          response: { 200: userPageSchema, ...errors },
        },
      },
      async (request) => {
        const { search, role, ...page } = request.query;
        const found = await pageUsers(platform, limitOf(page), { search, role });
        return { ...page, total: found.total, users: found.users.map(presentUser) };
      },
    );

    app.post(
      '/v1/admin/users',
      {
        schema: {
          summary: 'Add a user; the answer holds their one-time password, shown once',
          tags: ['admin'],
          body: z.object({
            email: z.email(),
            name: z.string().min(1).max(200),
            role: userRoleSchema,
          }),
          response: {
            201: newUserResultSchema,
            ...errors,
          },
        },
      },
      async (request, reply) => {
        const made = await createUserWithPassword(
          platform,
          actorOf(requireCaller(request)),
          request.body,
        );
        return reply
          .status(201)
          .send({ user: presentUser(made.user), oneTimePassword: made.oneTimePassword });
      },
    );

    app.patch(
      '/v1/admin/users/:id',
      {
        schema: {
          summary: "Change a user's role, or disable or enable their account",
          tags: ['admin'],
          params: userParams,
          body: z.object({ role: userRoleSchema.optional(), disabled: z.boolean().optional() }),
          response: { 200: userViewSchema, ...errors },
        },
      },
      async (request) => {
        const actor = actorOf(requireCaller(request));
        let user = await userById(request.params.id);
        if (request.body.role) {
          user = await changeRole(platform, actor, { email: user.email, role: request.body.role });
        }
        if (request.body.disabled !== undefined) {
          user = await setUserDisabled(platform, actor, {
            email: user.email,
            disabled: request.body.disabled,
          });
        }
        return presentUser(user);
      },
    );

    app.post(
      '/v1/admin/users/:id/reset-password',
      {
        schema: {
          summary: 'A new one-time password for the user; their sessions end',
          tags: ['admin'],
          params: userParams,
          body: z.object({ resetTotp: z.boolean().default(false) }),
          response: { 200: passwordResetSchema, ...errors },
        },
      },
      async (request) => {
        const user = await userById(request.params.id);
        const reset = await resetPassword(platform, actorOf(requireCaller(request)), {
          email: user.email,
          resetTotp: request.body.resetTotp,
        });
        return { oneTimePassword: reset.oneTimePassword };
      },
    );

    for (const [method, assigned] of [
      ['PUT', true],
      ['DELETE', false],
    ] as const) {
      app.route({
        method,
        url: '/v1/admin/users/:id/hospitals/:hospitalId',
        schema: {
          summary: assigned
            ? 'Make a steward a data steward of a hospital'
            : 'Take a hospital from a steward',
          tags: ['admin'],
          params: z.object({ id: z.uuid(), hospitalId: z.string().min(1) }),
          response: { 200: stewardHospitalsSchema, ...errors },
        },
        handler: async (request) => {
          const user = await userById(request.params.id);
          const hospitals = await assignSteward(platform, actorOf(requireCaller(request)), {
            email: user.email,
            hospitalId: request.params.hospitalId,
            assigned,
          });
          return { hospitals };
        },
      });
    }

    app.get(
      '/v1/admin/grants',
      {
        schema: {
          summary: 'Grants in force, optionally of one dataset, user or project',
          tags: ['admin'],
          querystring: pageRequestSchema.extend({
            datasetId: z.string().optional(),
            userId: z.uuid().optional(),
            projectId: z.string().optional(),
          }),
          response: { 200: grantPageSchema, ...errors },
        },
      },
      async (request) => {
        const { page, pageSize, ...filter } = request.query;
        const found = await pageGrants(platform, filter, limitOf({ page, pageSize }));
        return {
          page,
          pageSize,
          total: found.total,
          grants: found.grants.map((grant) =>
            presentGrant(grant, grant.userId ? found.emails.get(grant.userId) : undefined),
          ),
        };
      },
    );

    app.post(
      '/v1/admin/grants',
      {
        schema: {
          summary:
            'Give a user or a project access to a dataset; one grant in force per holder, dataset and level (409 for a second)',
          tags: ['admin'],
          body: newGrantSchema,
          response: { 201: grantViewSchema, ...errors },
        },
      },
      async (request, reply) => {
        const { userId, expiresAt, ...rest } = request.body;
        const email = userId ? (await userById(userId)).email : undefined;
        const grant = await grantDatasetAccess(platform, actorOf(requireCaller(request)), {
          ...rest,
          email,
          expiresAt: expiresAt ? new Date(expiresAt) : undefined,
        });
        return reply.status(201).send(presentGrant(grant, email));
      },
    );

    app.delete(
      '/v1/admin/grants/:id',
      {
        schema: {
          summary: 'Revoke a grant at once and for good',
          tags: ['admin'],
          params: z.object({ id: z.uuid() }),
          response: { 200: grantViewSchema, ...errors },
        },
      },
      async (request) =>
        presentGrant(
          await revokeGrant(platform, actorOf(requireCaller(request)), request.params.id),
        ),
    );

    app.get(
      '/v1/admin/projects',
      {
        schema: {
          summary: 'Projects and their members, a page at a time',
          tags: ['admin'],
          querystring: pageRequestSchema,
          response: { 200: projectPageSchema, ...errors },
        },
      },
      async (request) => {
        const found = await pageProjects(platform, limitOf(request.query));
        return {
          ...request.query,
          total: found.total,
          projects: found.projects.map(presentProject),
        };
      },
    );

    app.post(
      '/v1/admin/projects',
      {
        schema: {
          summary: 'Make a project: a group of researchers that grants can be given to',
          tags: ['admin'],
          body: z.object({
            id: z.string().min(1).max(63),
            name: z.string().min(1).max(200),
            description: z.string().max(2000).optional(),
          }),
          response: { 201: projectViewSchema, ...errors },
        },
      },
      async (request, reply) =>
        reply
          .status(201)
          .send(
            presentProject(
              await createProject(platform, actorOf(requireCaller(request)), request.body),
            ),
          ),
    );

    for (const [method, member] of [
      ['PUT', true],
      ['DELETE', false],
    ] as const) {
      app.route({
        method,
        url: '/v1/admin/projects/:id/members/:userId',
        schema: {
          summary: member ? 'Add a user to a project' : 'Remove a user from a project',
          tags: ['admin'],
          params: z.object({ id: z.string().min(1), userId: z.uuid() }),
          response: { 200: projectViewSchema, ...errors },
        },
        handler: async (request) => {
          const user = await userById(request.params.userId);
          const project = await setProjectMember(platform, actorOf(requireCaller(request)), {
            projectId: request.params.id,
            email: user.email,
            member,
          });
          return presentProject(project);
        },
      });
    }

    app.get(
      '/v1/admin/access-requests',
      {
        schema: {
          summary: 'Access requests, newest first; by default the ones waiting for a decision',
          tags: ['admin'],
          querystring: pageRequestSchema.extend({
            status: z.enum(['pending', 'approved', 'rejected', 'all']).default('pending'),
          }),
          response: { 200: accessRequestPageSchema, ...errors },
        },
      },
      async (request) => {
        const { status, page, pageSize } = request.query;
        const found = await pageAccessRequests(
          platform,
          status === 'all' ? {} : { status },
          limitOf({ page, pageSize }),
        );
        return {
          page,
          pageSize,
          total: found.total,
          requests: found.requests.map((item) =>
            presentAccessRequest(item, found.emails.get(item.userId)),
          ),
        };
      },
    );

    app.post(
      '/v1/admin/access-requests/:id/decision',
      {
        schema: {
          summary: 'Approve (choosing level and expiry) or reject (with a reason) a request',
          tags: ['admin'],
          params: z.object({ id: z.uuid() }),
          body: accessDecisionSchema,
          response: { 200: accessRequestViewSchema, ...errors },
        },
      },
      async (request) => {
        const { expiresAt, ...decision } = request.body;
        const decided = await decideAccessRequest(platform, actorOf(requireCaller(request)), {
          requestId: request.params.id,
          ...decision,
          expiresAt: expiresAt ? new Date(expiresAt) : undefined,
        });
        return presentAccessRequest(decided);
      },
    );
  };
}
