import type { AccessRequestView, GrantView, ProjectView } from '@medlake/shared';
import type { AccessRequest } from '../../catalog/access-requests-repository.ts';
import type { Grant } from '../../catalog/grants-repository.ts';
import type { Project } from '../../catalog/projects-repository.ts';

/** A grant as the API shows it; with its holder's e-mail where the caller looked it up. */
export function presentGrant(grant: Grant, userEmail?: string): GrantView {
  return {
    id: grant.id,
    datasetId: grant.datasetId,
    userId: grant.userId,
    userEmail: userEmail ?? null,
    projectId: grant.projectId,
    level: grant.level,
    hospitals: grant.hospitals,
    expiresAt: grant.expiresAt?.toISOString() ?? null,
    createdAt: grant.createdAt.toISOString(),
  };
}

export function presentProject(project: Project): ProjectView {
  return { ...project, createdAt: project.createdAt.toISOString() };
}

/** A request as the API shows it; with the requester's e-mail where the caller looked it up. */
export function presentAccessRequest(
  request: AccessRequest,
  userEmail?: string,
): AccessRequestView {
  return {
    id: request.id,
    userId: request.userId,
    userEmail: userEmail ?? null,
    datasetId: request.datasetId,
    purpose: request.purpose,
    level: request.level,
    termsVersion: request.termsVersion,
    termsAcceptedAt: request.termsAcceptedAt.toISOString(),
    status: request.status,
    decidedAt: request.decidedAt?.toISOString() ?? null,
    decisionReason: request.decisionReason,
    grantId: request.grantId,
    createdAt: request.createdAt.toISOString(),
  };
}
